provider "aws" {
  region     = "eu-central-1"
  access_key = "AKIAHHV2BVCKHEWOPIGM"
  secret_key = "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"
}
resource "aws_db_instance" "db" {
  password = var.db_password
}
