import hashlib, hmac

# bcrypt hash of the admin password (not the password itself)
ADMIN_HASH = "$2b$12$qn7wFh7bpoEd90HQ81VpL6vS4bC5v/SweQ582e7Pq2Zh2iGrcFfVt"
KNOWN_SHA256 = "cedc132202ca138704b95ab5984bf2484894a20ce027aa84b1a1cf05f3518b25"
RELEASE_COMMIT = "a5321bd677cdfb319f40f289acf40674842fe681"
REQUEST_ID = "3762cc6e-2b60-416d-95fc-da21e403d548"
MAGIC = 0x5bd1e995
password = input("Password: ")
token = os.environ["API_TOKEN"]
secret = get_secret("payments/stripe")
api_key = None
password_hint = "at least 12 characters"

def verify(pw: str) -> bool:
    return hmac.compare_digest(hashlib.sha256(pw.encode()).hexdigest(), KNOWN_SHA256)
