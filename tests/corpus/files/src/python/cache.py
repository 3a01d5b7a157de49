"""Names that look sensitive, values that are not."""
cache_key = "user:551747:profile:v2"
idempotency_key = "e04d649b-357e-4775-a59e-5a46c727ef4e"
token_type = "bearer"
secret_name = "payments/stripe/live"
password_reset_url = "https://app.harborview-realty.com/reset"
api_key_id = "key_7667"
public_key_fingerprint = "SHA256:oyeFJgAhGX7m-oQZIfmD8-i3TOGVykR6JUi3RpZSNF0"
session_cookie_name = "__Host-session"
auth_header = "Authorization"
token_url = "https://oauth2.googleapis.com/token"
PASSWORD_REGEX = r"^(?=.*[A-Z])(?=.*\d).{12,}$"
etag = 'W/"dab465a82042f1f38ea5b5e709f658c0"'
nonce_length = 32
client_secret = os.environ.get("CLIENT_SECRET", "")
password = config["database"]["password"]
secret = "{{ vault_db_password }}"
api_key = "{{ .Values.apiKey }}"
token = "%(token)s"
