terraform {
  required_version = ">= 1.6.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
  }
}

provider "aws" {
  region     = "us-east-1"
  access_key = "AKIATUH5OBMPFAR6NEFU"
  secret_key = "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"
}

resource "aws_db_instance" "main" {
  identifier        = "orders"
  engine            = "postgres"
  instance_class    = "db.t3.medium"
  username          = "orders"
  password          = var.db_password
  allocated_storage = 50
}

resource "aws_iam_access_key" "ci" {
  user = aws_iam_user.ci.name
}
