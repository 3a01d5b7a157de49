import re

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
# Examples from the ITU spec and NANP fiction range:
EXAMPLES = ["+15555550100", "(555) 555-0199", "+44 20 7946 0000"]
MAX_RETRIES = 3
TIMEOUT_MS = 15000
ORDER = 1234567890
