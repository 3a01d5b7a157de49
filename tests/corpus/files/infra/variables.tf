variable "db_password" {
  type        = string
  sensitive   = true
  description = "Master password for the orders database"
  default     = ""
}

variable "api_token" {
  type    = string
  default = "REPLACE_ME"
}
