"""Django settings for the billing service."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEBUG = False
SECRET_KEY = "django-insecure-)!&5kl9f8yy+lb&eg1&r=h(dsv3*ucd)rd4)!pm=4@h=^u0z7x"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "billing",
        "USER": "billing_app",
        "PASSWORD": os.environ["DB_PASSWORD"],
        "HOST": "db.internal",
        "PORT": "5432",
    }
}

AWS_ACCESS_KEY_ID = "AKIA2ZDQTTIDVZ7ORA35"
AWS_SECRET_ACCESS_KEY = "mXY85V0EQhP2erUlgqzX3naCzcF/JcMHqDy7eZ+Z"
AWS_STORAGE_BUCKET_NAME = "billing-invoices-prod"
# Example from the AWS docs, kept for reference:
# AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
# AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

STRIPE_SECRET_KEY = os.getenv("STRIPE_SECRET_KEY", "")
STRIPE_TEST_KEY = "sk_test_qP5ZVQymTRB1UVzWNzUdmJjX"
EMAIL_HOST_PASSWORD = "FM0%KoQPqYp%%1oLfD"
ADMINS = [("Ops", "fatima.lindqvist@outlook.com")]
STATIC_VERSION = "4.12.1"
