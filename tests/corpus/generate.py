#!/usr/bin/python3
"""Deterministic generator for cdeguard's labelled evaluation corpus.

Writes tests/corpus/files/** and tests/corpus/labels.json.  Every planted
positive is registered through S() (secret) or P() (PII); the label's line is
found by locating the planted string in the rendered file.  Everything else in
the files (placeholders, test keys, digests, ...) is an unlabelled hard negative.
All values are random, fake, and generated from a fixed seed.
"""
import base64, hashlib, json, os, random, shutil, string, sys, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "files")
R = random.Random(20261123)

UP, LO, DG = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = UP + LO + DG
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"
B62 = DG + UP + LO


def rs(alpha, n):
    return "".join(R.choice(alpha) for _ in range(n))


# ---------------------------------------------------------------- registry
_cur = []
LABELS = []
FILES = []


def S(kind, v):
    _cur.append(("secret", kind, v)); return v


def A(kind, v):
    """Ambiguous: reasonable people disagree; findings here are neither TP nor FP."""
    _cur.append(("ambiguous", kind, v)); return v


def P(kind, v):
    _cur.append(("pii", kind, v)); return v


def emit(path, text):
    global _cur
    full = os.path.join(OUT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    FILES.append(path)
    seen = set()
    for cat, kind, v in _cur:
        needles = [v, json.dumps(v)[1:-1]]
        hits = []
        for nd in needles:
            i = text.find(nd)
            while i >= 0:
                hits.append(i)
                i = text.find(nd, i + 1)
            if hits:
                break
        nlen = len(nd.encode())
        if not hits:
            raise SystemExit("planted value not found in %s: %s %r" % (path, kind, v[:40]))
        for i in hits:
            line = text.count("\n", 0, i) + 1
            key = (line, cat, v)
            if key in seen:
                continue
            seen.add(key)
            start = len(text[:i].encode())
            LABELS.append({"file": path, "line": line, "category": cat, "kind": kind,
                           "value_sha256": hashlib.sha256(v.encode()).hexdigest(),
                           "start": start, "end": start + nlen})
    _cur = []


# ---------------------------------------------------------------- secrets
def b62(n, width):
    s = ""
    while n:
        n, r = divmod(n, 62); s = B62[r] + s
    return s.rjust(width, "0")


def gh(prefix="ghp_"):
    body = prefix + rs(ALNUM, 30)
    return body + b62(zlib.crc32(body.encode()) & 0xffffffff, 6)


def gh_fine():
    return "github_pat_" + rs(ALNUM, 22) + "_" + rs(ALNUM, 59)


def aws_id(prefix="AKIA"):
    return prefix + rs(UP + "234567", 16)


def aws_secret():
    while True:
        v = rs(B64, 40)
        if any(c in v for c in "+/") and any(c.isdigit() for c in v):
            return v


def gcp_key():
    return "AIza" + rs(B64URL, 35)


def gitlab():
    return "glpat-" + rs(B64URL, 20)


def slack_bot(p="xoxb"):
    return "%s-%s-%s-%s" % (p, rs(DG, 12), rs(DG, 13), rs(ALNUM, 24))


def slack_hook():
    return "https://hooks.slack.com/services/T%s/B%s/%s" % (rs(UP + DG, 8), rs(UP + DG, 10), rs(ALNUM, 24))


def stripe(p="sk_live_"):
    return p + "51" + rs(ALNUM, 97)


def twilio_sk():
    return "SK" + rs(HEX, 32)


def sendgrid():
    return "SG." + rs(B64URL, 22) + "." + rs(B64URL, 43)


def openai():
    return "sk-proj-" + rs(B64URL, 74) + "T3BlbkFJ" + rs(B64URL, 74)


def anthropic():
    return "sk-ant-api03-" + rs(B64URL, 93) + "AA"


def hf():
    return "hf_" + rs(UP + LO, 34)


def npm():
    return "npm_" + rs(ALNUM, 36)


def pypi():
    return "pypi-AgEIcHlwaS5vcmc" + rs(B64URL, 150)


def docker():
    return "dckr_pat_" + rs(B64URL, 27)


def pw(n=20, special=None):
    if special is None:
        special = R.random() < 0.5
    while True:
        v = rs(ALNUM + ("!#%^*-_=+" if special else ""), n)
        if sum(c.isdigit() for c in v) >= 2 and any(c.isupper() for c in v):
            return v


def upw(n=16):
    """password safe inside a URI userinfo"""
    return pw(n, special=False)


def hexs(n):
    return rs(HEX, n)


def pem(kind="RSA PRIVATE KEY", lines=25):
    body = "\n".join(rs(B64, 64) for _ in range(lines)) + "\n" + rs(B64, 40) + "=="
    return "-----BEGIN %s-----\n%s\n-----END %s-----" % (kind, body, kind)


def openssh_key():
    head = base64.b64encode(b"openssh-key-v1\x00\x00\x00\x00\x04none\x00\x00\x00\x04none" + bytes(R.randrange(256) for _ in range(330))).decode()
    body = "\n".join(head[i:i + 70] for i in range(0, len(head), 70))
    return "-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n-----END OPENSSH PRIVATE KEY-----" % body


def b64u(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def jwt(sub, extra=None):
    h = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    pl = {"sub": sub, "iat": 1763880000 + R.randrange(100000), "exp": 1763966400 + R.randrange(100000)}
    pl.update(extra or {})
    return h + "." + b64u(json.dumps(pl, separators=(",", ":")).encode()) + "." + b64u(bytes(R.randrange(256) for _ in range(32)))


def azure_conn(acct):
    return "DefaultEndpointsProtocol=https;AccountName=%s;AccountKey=%s==;EndpointSuffix=core.windows.net" % (acct, rs(B64, 86))


# ---------------------------------------------------------------- PII
FIRST = ["Olivia", "Liam", "Priya", "Mateo", "Hannah", "Kenji", "Fatima", "Lukas", "Chloe", "Diego", "Amara",
         "Noah", "Sofia", "Arjun", "Ingrid", "Tomasz", "Aisha", "Ethan", "Camille", "Rafael", "Yuki", "Grace"]
LAST = ["Whitfield", "Okafor", "Raghunathan", "Delgado", "Brennan", "Takahashi", "Haddad", "Vogel", "Marchetti",
        "Lindqvist", "Kowalski", "Osei", "Fernandes", "Nakamura", "Gallagher", "Moreau", "Szabo", "Castillo"]
DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.uk", "protonmail.com", "northwindlogistics.com", "brightpath-health.org",
           "kestrel-analytics.io", "meridianbank.de", "fjordsoft.no", "harborview-realty.com", "icloud.com", "web.de"]


def person():
    return R.choice(FIRST), R.choice(LAST)


def email(f=None, l=None):
    if f is None:
        f, l = person()
    style = R.randrange(4)
    local = [f.lower() + "." + l.lower(), f[0].lower() + l.lower(), f.lower() + l.lower()[:3] + str(R.randrange(10, 99)),
             f.lower() + "_" + l.lower()][style]
    return local + "@" + R.choice(DOMAINS)


def us_phone(fmt):
    npa = R.choice(["212", "415", "646", "312", "617", "206", "512", "303", "404", "702", "919", "971"])
    nxx = str(R.randrange(200, 999))
    while nxx == "555":
        nxx = str(R.randrange(200, 999))
    xxxx = "%04d" % R.randrange(10000)
    return {"e164": "+1%s%s%s" % (npa, nxx, xxxx), "nat": "(%s) %s-%s" % (npa, nxx, xxxx),
            "dash": "%s-%s-%s" % (npa, nxx, xxxx), "intl": "+1 %s-%s-%s" % (npa, nxx, xxxx)}[fmt]


def d(n):
    return "".join(R.choice(DG) for _ in range(n))


def intl_phone(cc, fmt="e164"):
    if cc == "GB":
        m = "7" + R.choice("45789") + d(8)
        return {"e164": "+44" + m, "nat": "0%s %s" % (m[:4], m[4:]), "intl": "+44 %s %s" % (m[:4], m[4:])}[fmt]
    if cc == "DE":
        m = "1" + R.choice("567") + d(9)
        return {"e164": "+49" + m, "nat": "0%s %s" % (m[:3], m[3:]), "intl": "+49 %s %s" % (m[:3], m[3:])}[fmt]
    if cc == "FR":
        m = R.choice("67") + d(8)
        g = " ".join([m[0]] + [m[i:i + 2] for i in range(1, 9, 2)])
        return {"e164": "+33" + m, "nat": "0" + g, "intl": "+33 " + g}[fmt]
    if cc == "IN":
        m = R.choice("6789") + d(9)
        return {"e164": "+91" + m, "nat": "0%s %s" % (m[:5], m[5:]), "intl": "+91 %s %s" % (m[:5], m[5:])}[fmt]
    if cc == "AU":
        m = "4" + d(8)
        return {"e164": "+61" + m, "nat": "0%s %s %s" % (m[:3], m[3:6], m[6:]), "intl": "+61 %s %s %s" % (m[:3], m[3:6], m[6:])}[fmt]
    if cc == "BR":
        m = "11" + "9" + d(8)
        return {"e164": "+55" + m, "nat": "(11) %s-%s" % (m[2:7], m[7:]), "intl": "+55 11 %s-%s" % (m[2:7], m[7:])}[fmt]
    if cc == "JP":
        m = R.choice(["90", "80", "70"]) + d(8)
        return {"e164": "+81" + m, "nat": "0%s-%s-%s" % (m[:2], m[2:6], m[6:]), "intl": "+81 %s-%s-%s" % (m[:2], m[2:6], m[6:])}[fmt]
    raise ValueError(cc)


def ssn(sep="-"):
    while True:
        a = R.randrange(1, 900)
        if a != 666:
            break
    v = "%03d%s%02d%s%04d" % (a, sep, R.randrange(1, 100), sep, R.randrange(1, 10000))
    assert v.replace(sep, "") not in ("078051120", "219099999")
    return v


def luhn_digit(s):
    tot = 0
    for i, c in enumerate(reversed(s)):
        n = int(c)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        tot += n
    return str((10 - tot % 10) % 10)


def luhn_ok(s):
    return luhn_digit(s[:-1]) == s[-1]


FAMOUS = {"4111111111111111", "4242424242424242", "5555555555554444", "5105105105105100", "378282246310005",
          "371449635398431", "6011111111111117", "6011000990139424", "4012888888881881", "4000056655665556"}


def card(brand, fmt="plain"):
    while True:
        if brand == "visa":
            base = "4" + d(14)
        elif brand == "mc":
            base = R.choice(["51", "52", "53", "54", "55"]) + d(13) if R.random() < .7 else str(R.randrange(2221, 2721)) + d(11)
        elif brand == "amex":
            base = R.choice(["34", "37"]) + d(12)
        elif brand == "discover":
            base = R.choice(["6011", "6500", "6521"]) + d(11)
        v = base + luhn_digit(base)
        if v not in FAMOUS and len(set(v)) > 4:
            break
    if fmt == "plain":
        return v
    sep = " " if fmt == "space" else "-"
    if brand == "amex":
        return sep.join([v[:4], v[4:10], v[10:]])
    return sep.join(v[i:i + 4] for i in range(0, 16, 4))


def bad_card():
    base = "4" + d(14)
    return base + str((int(luhn_digit(base)) + 3) % 10)


def iban(cc, fmt="plain", bad=False):
    bban = {"DE": lambda: d(8) + d(10), "GB": lambda: rs(UP, 4) + d(6) + d(8), "FR": lambda: d(5) + d(5) + rs(UP + DG, 11) + d(2),
            "NL": lambda: rs(UP, 4) + d(10), "ES": lambda: d(20), "IT": lambda: rs(UP, 1) + d(10) + rs(UP + DG, 12),
            "CH": lambda: d(5) + rs(UP + DG, 12), "BE": lambda: d(12)}[cc]()
    num = "".join(str(int(c, 36)) for c in bban + cc + "00")
    ck = 98 - int(num) % 97
    if bad:
        ck = (ck + 7) % 97 + 2
    v = "%s%02d%s" % (cc, ck, bban)
    if fmt == "plain":
        return v
    return " ".join(v[i:i + 4] for i in range(0, len(v), 4))


def sha256hex():
    return hexs(64)


def uuid4():
    h = hexs(32)
    return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], R.choice("89ab"), h[17:20], h[20:])


def bcrypt():
    return "$2b$12$" + rs(ALNUM + "./", 53)


def ssh_pub():
    return "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ" + rs(B64, 360) + " deploy@ci-runner"


def ed_pub():
    return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rs(B64, 42) + " build-bot"


def pubkey_pem():
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(rs(B64, 64) for _ in range(5)) + "\n" + rs(B64, 24) + "==\n-----END PUBLIC KEY-----"


def cert_pem():
    return "-----BEGIN CERTIFICATE-----\nMIID" + rs(B64, 60) + "\n" + "\n".join(rs(B64, 64) for _ in range(14)) + "\n" + rs(B64, 30) + "=\n-----END CERTIFICATE-----"


def integrity():
    return "sha512-" + base64.b64encode(bytes(R.randrange(256) for _ in range(64))).decode()


def png_b64(n=300):
    return "iVBORw0KGgoAAAANSUhEUgAA" + base64.b64encode(bytes(R.randrange(256) for _ in range(n))).decode()


def gitsha():
    return hexs(40)


# ================================================================ files
def build():
    # ---------------------------------------------------------- Python
    emit("src/python/settings.py", f'''"""Django settings for the billing service."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEBUG = False
SECRET_KEY = "{S("django-secret-key", "django-insecure-" + rs(LO + DG + "!@#%^&*(-_=+)", 50))}"

DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "billing",
        "USER": "billing_app",
        "PASSWORD": os.environ["DB_PASSWORD"],
        "HOST": "db.internal",
        "PORT": "5432",
    }}
}}

AWS_ACCESS_KEY_ID = "{S("aws-access-key-id", aws_id())}"
AWS_SECRET_ACCESS_KEY = "{S("aws-secret-access-key", aws_secret())}"
AWS_STORAGE_BUCKET_NAME = "billing-invoices-prod"
# Example from the AWS docs, kept for reference:
# AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
# AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

STRIPE_SECRET_KEY = os.getenv("STRIPE_SECRET_KEY", "")
STRIPE_TEST_KEY = "sk_test_{rs(ALNUM, 24)}"
EMAIL_HOST_PASSWORD = "{S("password-assignment", pw(18))}"
ADMINS = [("Ops", "{P("email", email())}")]
STATIC_VERSION = "4.12.1"
''')

    emit("src/python/notify.py", f'''import requests

SLACK_WEBHOOK = "{S("slack-webhook", slack_hook())}"
SENDGRID_API_KEY = "{S("sendgrid-api-key", sendgrid())}"
TWILIO_API_KEY = "{S("twilio-api-key", twilio_sk())}"
TWILIO_API_SECRET = "{S("twilio-api-secret", rs(ALNUM, 32))}"


def page_oncall(message: str) -> None:
    # TODO: move the webhook to Vault, see OPS-4411
    requests.post(SLACK_WEBHOOK, json={{"text": message}}, timeout=5)


def send_sms(to: str, body: str) -> None:
    """to must be E.164, e.g. +15555550100 (fictional)."""
    ...


if __name__ == "__main__":
    send_sms("{P("phone-e164-us", us_phone("e164"))}", "deploy finished")
''')

    emit("src/python/test_payments.py", f'''import pytest
from payments import charge

STRIPE_KEY = "sk_test_{rs(ALNUM, 24)}"
TEST_CARD = "4242424242424242"  # Stripe documented test card
DECLINED = "4000000000000002"


@pytest.mark.parametrize("amount", [100, 2500, 99999])
def test_charge(amount):
    res = charge(STRIPE_KEY, TEST_CARD, amount, idempotency_key="{uuid4()}")
    assert res.status == "succeeded"
    assert res.id.startswith("ch_")


def test_password_field_masked():
    user = {{"email": "jane.doe@example.com", "password": "********"}}
    assert "password" in user


def test_api_key_placeholder():
    assert load_key("YOUR_API_KEY") is None
    assert load_key("<token>") is None
    assert load_key("${{API_KEY}}") is None
''')

    fn, ln = person()
    emit("src/python/migrate_users.py", f'''#!/usr/bin/env python3
"""One-off migration. Do not commit credentials here (we did anyway)."""
import psycopg2

SRC = "{S("postgres-uri", "postgresql://migrator:" + upw(16) + "@pg-legacy.corp.northwindlogistics.com:5432/users")}"
DST = "postgresql://migrator:${{DST_PASSWORD}}@pg-new.internal:5432/users"

FIXUPS = [
    # (user id, corrected email, phone)
    (10293, "{P("email", email(fn, ln))}", "{P("phone-nat-us", us_phone("nat"))}"),
    (10377, "{P("email", email())}", "{P("phone-intl-gb", intl_phone("GB", "intl"))}"),
    (20011, "test.user@example.com", "555-0100"),
]

BATCH_SIZE = 5000
CUTOFF = "2024-03-17T00:00:00Z"
''')

    emit("src/python/llm_client.py", f'''import anthropic
import openai
import os

# local dev only
openai.api_key = "{S("openai-api-key", openai())}"
client = anthropic.Anthropic(api_key="{S("anthropic-api-key", anthropic())}")
prod_client = anthropic.Anthropic(api_key=os.environ.get("ANTHROPIC_API_KEY"))
HF_TOKEN = "{S("huggingface-token", hf())}"
PLACEHOLDER = "sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
EXAMPLE_OPENAI = "sk-proj-YOUR_KEY_HERE"

def summarize(text):
    return client.messages.create(model="claude-sonnet-4-5", max_tokens=512,
                                  messages=[{{"role": "user", "content": text}}])
''')

    emit("src/python/crypto_utils.py", f'''import hashlib, hmac

# bcrypt hash of the admin password (not the password itself)
ADMIN_HASH = "{bcrypt()}"
KNOWN_SHA256 = "{sha256hex()}"
RELEASE_COMMIT = "{gitsha()}"
REQUEST_ID = "{uuid4()}"
MAGIC = 0x5bd1e995
password = input("Password: ")
token = os.environ["API_TOKEN"]
secret = get_secret("payments/stripe")
api_key = None
password_hint = "at least 12 characters"

def verify(pw: str) -> bool:
    return hmac.compare_digest(hashlib.sha256(pw.encode()).hexdigest(), KNOWN_SHA256)
''')

    # ---------------------------------------------------------- JS / TS
    emit("src/js/config.js", f'''module.exports = {{
  port: process.env.PORT || 3000,
  mongoUri: "{S("mongodb-uri", "mongodb+srv://appuser:" + upw(14) + "@cluster0.x7k2p.mongodb.net/shop?retryWrites=true&w=majority")}",
  redisUrl: "redis://localhost:6379/0",
  jwtSecret: process.env.JWT_SECRET,
  stripe: {{
    secretKey: "{S("stripe-live-secret-key", stripe())}",
    publishableKey: "pk_live_{rs(ALNUM, 99)}",
  }},
  sentryDsn: "https://{hexs(32)}@o{d(6)}.ingest.sentry.io/{d(7)}",
  buildId: "{gitsha()}",
}};
''')

    emit("src/js/api.ts", f'''import axios from "axios";

const GITHUB_TOKEN = "{S("github-pat-classic", gh())}";
const GITLAB_TOKEN: string = "{S("gitlab-pat", gitlab())}";
const EXAMPLE_TOKEN = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

export async function listRepos(org: string) {{
  const res = await axios.get(`https://api.github.com/orgs/${{org}}/repos`, {{
    headers: {{ Authorization: `Bearer ${{GITHUB_TOKEN}}` }},
  }});
  return res.data;
}}

export const retryDelaysMs = [250, 500, 1000, 2000, 4000];
export const traceId = "{hexs(32)}";
''')

    emit("src/js/auth.test.js", f'''const jwt = require("jsonwebtoken");

describe("auth", () => {{
  it("rejects an expired token", () => {{
    // header.payload only, signature stripped: not a usable token
    const token = "{A("unsigned-jwt-example", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0")}";
    expect(() => jwt.verify(token, "test-secret")).toThrow();
  }});
  it("uses the session token from the fixture", () => {{
    const session = "{S("jwt", jwt("user_" + d(6), {"email": "svc@" + "internal"}))}";
    expect(session.split(".")).toHaveLength(3);
  }});
  it("formats a phone", () => {{
    expect(format("2025550147")).toBe("{A("fictional-555-phone", "(202) 555-0147")}");
  }});
}});
''')

    emit("src/js/firebase.ts", f'''import {{ initializeApp }} from "firebase/app";

const firebaseConfig = {{
  apiKey: "{S("gcp-api-key", gcp_key())}",
  authDomain: "kestrel-analytics.firebaseapp.com",
  projectId: "kestrel-analytics",
  storageBucket: "kestrel-analytics.appspot.com",
  messagingSenderId: "{d(12)}",
  appId: "1:{d(12)}:web:{hexs(22)}",
}};

export const app = initializeApp(firebaseConfig);
''')

    emit("src/js/seed-users.mjs", f'''export const users = [
  {{ id: 1, name: "{FIRST[0]} {LAST[0]}", email: "{P("email", email(FIRST[0], LAST[0]))}", phone: "{P("phone-intl-us", us_phone("intl"))}" }},
  {{ id: 2, name: "{FIRST[2]} {LAST[2]}", email: "{P("email", email(FIRST[2], LAST[2]))}", phone: "{P("phone-intl-in", intl_phone("IN", "intl"))}" }},
  {{ id: 3, name: "Test User", email: "test@example.com", phone: "+1 555 0100" }},
  {{ id: 4, name: "Placeholder", email: "user@example.org", phone: "000-000-0000" }},
];
export const createdAt = 1732364400000;
''')

    # ---------------------------------------------------------- Go / Java / Ruby / Shell
    emit("src/go/main.go", f'''package main

import (
	"database/sql"
	"fmt"
	"os"
)

const dsn = "{S("mysql-dsn", "orders:" + upw(16) + "@tcp(mysql-primary.prod:3306)/orders?parseTime=true")}"
const datadogAPIKey = "{S("datadog-api-key", hexs(32))}"

var version = "1.27.3"
var buildSHA = "{gitsha()}"

func main() {{
	pass := os.Getenv("DB_PASSWORD")
	if pass == "" {{
		fmt.Println("DB_PASSWORD not set")
	}}
	db, _ := sql.Open("mysql", dsn)
	defer db.Close()
}}
''')

    emit("src/go/client_test.go", f'''package client

import "testing"

func TestParse(t *testing.T) {{
	cases := []string{{
		"AKIAIOSFODNN7EXAMPLE",
		"sk_test_{rs(ALNUM, 24)}",
		"{uuid4()}",
	}}
	for _, c := range cases {{
		if _, err := Parse(c); err != nil {{
			t.Fatal(err)
		}}
	}}
	digest := "sha256:{sha256hex()}"
	_ = digest
}}
''')

    emit("src/java/AppConfig.java", f'''package com.meridianbank.payments;

import org.springframework.context.annotation.Configuration;

@Configuration
public class AppConfig {{
    private static final String DB_URL = "jdbc:postgresql://pg.meridianbank.internal:5432/ledger";
    private static final String DB_USER = "ledger";
    private static final String DB_PASSWORD = "{S("password-assignment", pw(20))}";
    private static final String SERVICE_PASSWORD = System.getenv("SERVICE_PASSWORD");
    private static final String SLACK_BOT_TOKEN = "{S("slack-bot-token", slack_bot())}";
    private static final long SERIAL = {d(18)}L;
    private static final String CONTACT = "{P("email", email())}";
}}
''')

    emit("src/ruby/deploy.rb", f'''require "net/http"

HEROKU_APP = "harborview-web"
NPM_TOKEN = "{S("npm-token", npm())}"
DOCKERHUB_TOKEN = "{S("dockerhub-pat", docker())}"
password = ENV.fetch("ADMIN_PASSWORD")
release = "v2024.11.3"
checksum = "{sha256hex()}"

def notify
  puts "deploying #{{release}} (#{{checksum[0, 12]}})"
end
''')

    emit("scripts/backup.sh", f'''#!/usr/bin/env bash
set -euo pipefail

export PGPASSWORD='{S("password-assignment", pw(16))}'
export AWS_ACCESS_KEY_ID={S("aws-access-key-id", aws_id())}
export AWS_SECRET_ACCESS_KEY={S("aws-secret-access-key", aws_secret())}
export AWS_DEFAULT_REGION=eu-west-1
BACKUP_PASSWORD="${{BACKUP_PASSWORD:?must be set}}"
STAMP=$(date +%Y%m%d%H%M%S)

pg_dump -h db.internal -U backup ledger | gzip > "/backups/ledger-$STAMP.sql.gz"
aws s3 cp "/backups/ledger-$STAMP.sql.gz" s3://meridian-backups/ledger/
''')

    emit("scripts/setup_dev.sh", f'''#!/bin/sh
# Fill these in from 1Password before running
export OPENAI_API_KEY="sk-..."
export GITHUB_TOKEN=<your-token>
export DB_PASSWORD=changeme
export API_KEY=xxxxxxxxxxxxxxxxxxxxxxxx
export SECRET_KEY=${{SECRET_KEY}}
docker run -e POSTGRES_PASSWORD=postgres -p 5432:5432 postgres:16
echo "image digest sha256:{sha256hex()}"
''')

    # ---------------------------------------------------------- YAML
    emit("deploy/k8s/secret.yaml", f'''apiVersion: v1
kind: Secret
metadata:
  name: payments-credentials
  namespace: payments
type: Opaque
stringData:
  STRIPE_API_KEY: {S("stripe-live-secret-key", stripe())}
  DATABASE_URL: {S("postgres-uri", "postgres://payments:" + upw(18) + "@payments-db.payments.svc:5432/payments")}
  SENDGRID_API_KEY: {S("sendgrid-api-key", sendgrid())}
''')

    emit("deploy/k8s/deployment.yaml", f'''apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      annotations:
        checksum/config: {sha256hex()}
    spec:
      containers:
        - name: web
          image: ghcr.io/harborview/web@sha256:{sha256hex()}
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: web-db
                  key: password
            - name: API_TOKEN
              value: "${{API_TOKEN}}"
            - name: LOG_LEVEL
              value: info
          resources:
            limits:
              memory: 512Mi
''')

    emit("deploy/k8s/registry-secret.yaml", f'''apiVersion: v1
kind: Secret
metadata:
  name: regcred
type: kubernetes.io/dockerconfigjson
data:
  password: {S("base64-password", base64.b64encode(pw(20).encode()).decode())}
  username: {base64.b64encode(b"deploy-bot").decode()}
''')

    emit(".github/workflows/ci.yml", f'''name: CI
on:
  push:
    branches: [main]
  pull_request:

jobs:
  test:
    runs-on: ubuntu-latest
    env:
      NODE_VERSION: "20.11.1"
      NPM_TOKEN: ${{{{ secrets.NPM_TOKEN }}}}
      AWS_ACCESS_KEY_ID: ${{{{ secrets.AWS_ACCESS_KEY_ID }}}}
    steps:
      - uses: actions/checkout@{gitsha()}
      - uses: actions/setup-node@v4
        with:
          node-version: ${{{{ env.NODE_VERSION }}}}
      - run: npm ci
      - run: npm test
        env:
          CODECOV_TOKEN: {S("codecov-token", uuid4())}
      - run: echo "//registry.npmjs.org/:_authToken=${{NPM_TOKEN}}" > .npmrc
''')

    emit(".github/workflows/release.yml", f'''name: Release
on:
  workflow_dispatch:
jobs:
  publish:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Publish to PyPI
        env:
          TWINE_USERNAME: __token__
          TWINE_PASSWORD: {S("pypi-token", pypi())}
        run: twine upload dist/*
      - name: Docker login
        run: echo "${{{{ secrets.DOCKERHUB_TOKEN }}}}" | docker login -u harborview --password-stdin
''')

    emit("docker-compose.yml", f'''version: "3.9"
services:
  db:
    image: postgres:16.2
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: {S("password-assignment", pw(22))}
      POSTGRES_DB: app
  cache:
    image: redis:7.2
    command: ["redis-server", "--requirepass", "{S("password-assignment", pw(24))}"]
  web:
    build: .
    environment:
      - DATABASE_URL=postgres://app:${{POSTGRES_PASSWORD}}@db:5432/app
      - SECRET_KEY=${{SECRET_KEY:-changeme}}
      - MAIL_PASSWORD=
    ports:
      - "8080:8080"
''')

    emit("deploy/helm/values.yaml", f'''replicaCount: 2
image:
  repository: registry.gitlab.com/kestrel/analytics
  tag: "3.4.0"
  pullPolicy: IfNotPresent
postgresql:
  auth:
    username: analytics
    password: "{S("password-assignment", pw(20))}"
    existingSecret: ""
redis:
  auth:
    password: ""
gitlab:
  runnerToken: {S("gitlab-runner-token", "glrt-" + rs(B64URL, 20))}
ingress:
  enabled: true
  hosts:
    - analytics.kestrel-analytics.io
monitoring:
  grafanaToken: {S("grafana-service-account-token", "glsa_" + rs(ALNUM, 32) + "_" + hexs(8))}
''')

    emit("deploy/helm/values-example.yaml", '''# Copy to values.yaml and fill in.
postgresql:
  auth:
    password: "<REPLACE_ME>"
apiKeys:
  openai: "sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
  anthropic: "YOUR_ANTHROPIC_API_KEY"
  stripe: "sk_live_..."
smtp:
  password: "********"
aws:
  accessKeyId: AKIAIOSFODNN7EXAMPLE
  secretAccessKey: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
''')

    emit("config/application.yml", f'''spring:
  datasource:
    url: jdbc:mysql://mysql.meridianbank.internal:3306/core
    username: core
    password: {S("password-assignment", pw(18))}
  mail:
    host: smtp.office365.com
    username: {P("email", email())}
    password: ${{MAIL_PASSWORD}}
management:
  endpoints:
    web:
      exposure:
        include: health,info
app:
  vault-token: {S("vault-token", "hvs." + rs(B64URL, 90))}
''')

    # ---------------------------------------------------------- .env
    emit(".env", f'''NODE_ENV=production
PORT=8080
DATABASE_URL={S("postgres-uri", "postgresql://shop:" + upw(20) + "@shop-db.cx1a2b3c4d5e.eu-west-1.rds.amazonaws.com:5432/shop")}
REDIS_URL={S("redis-uri", "redis://:" + upw(24) + "@cache.internal:6379/0")}
OPENAI_API_KEY={S("openai-api-key", openai())}
ANTHROPIC_API_KEY={S("anthropic-api-key", anthropic())}
STRIPE_SECRET_KEY={S("stripe-live-secret-key", stripe())}
STRIPE_PUBLISHABLE_KEY=pk_live_{rs(ALNUM, 99)}
GITHUB_TOKEN={S("github-pat-classic", gh())}
SENTRY_ENVIRONMENT=production
SESSION_SECRET={S("generic-secret", hexs(64))}
SUPPORT_EMAIL={P("email", email())}
FEATURE_FLAGS=checkout_v2,new_search
''')

    emit(".env.example", '''NODE_ENV=development
PORT=3000
DATABASE_URL=postgresql://user:password@localhost:5432/shop
REDIS_URL=redis://localhost:6379/0
OPENAI_API_KEY=sk-your-key-here
ANTHROPIC_API_KEY=
STRIPE_SECRET_KEY=sk_test_xxxxxxxxxxxxxxxxxxxxxxxx
GITHUB_TOKEN=ghp_<your token>
SESSION_SECRET=changeme
SUPPORT_EMAIL=support@example.com
AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
''')

    emit("services/worker/.env.production", f'''QUEUE=jobs
CONCURRENCY=8
HUGGINGFACE_HUB_TOKEN={S("huggingface-token", hf())}
AZURE_STORAGE_CONNECTION_STRING={S("azure-storage-connection-string", azure_conn("kestrelprodblobs"))}
SLACK_BOT_TOKEN={S("slack-bot-token", slack_bot())}
DIGITALOCEAN_TOKEN={S("digitalocean-token", "dop_v1_" + hexs(64))}
SHOPIFY_ACCESS_TOKEN={S("shopify-access-token", "shpat_" + hexs(32))}
MAILGUN_API_KEY={S("mailgun-api-key", "key-" + hexs(32))}
LOG_FORMAT=json
''')

    emit("services/bot/.env.local", f'''TELEGRAM_BOT_TOKEN={S("telegram-bot-token", d(10) + ":AA" + rs(B64URL, 33))}
LINEAR_API_KEY={S("linear-api-key", "lin_api_" + rs(ALNUM, 40))}
POSTMAN_API_KEY={S("postman-api-key", "PMAK-" + hexs(24) + "-" + hexs(34))}
DISCORD_WEBHOOK=https://discord.com/api/webhooks/{d(18)}/{S("discord-webhook-token", rs(B64URL, 68))}
ADMIN_PHONE={P("phone-e164-de", intl_phone("DE"))}
''')

    # ---------------------------------------------------------- JSON
    sa_email = "billing-exporter@kestrel-analytics-prod.iam.gserviceaccount.com"
    key = pem("PRIVATE KEY", 26)
    emit("credentials/gcp-service-account.json", json.dumps({
        "type": "service_account", "project_id": "kestrel-analytics-prod",
        "private_key_id": hexs(40), "private_key": S("gcp-service-account-private-key", key + "\n"),
        "client_email": A("service-account-email", sa_email), "client_id": d(21),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/billing-exporter%40kestrel-analytics-prod.iam.gserviceaccount.com",
        "universe_domain": "googleapis.com"}, indent=2) + "\n")

    emit("package.json", json.dumps({
        "name": "@harborview/web", "version": "2.14.0", "private": True,
        "author": "Harborview Engineering <%s>" % A("role-email", "engineering@harborview-realty.com"),
        "scripts": {"build": "next build", "start": "next start -p 8080", "test": "jest"},
        "dependencies": {"next": "14.2.3", "react": "18.3.1", "axios": "^1.7.2"},
        "devDependencies": {"jest": "^29.7.0", "typescript": "5.4.5"}}, indent=2) + "\n")

    emit("package-lock.json", json.dumps({
        "name": "@harborview/web", "version": "2.14.0", "lockfileVersion": 3, "requires": True,
        "packages": {"node_modules/axios": {"version": "1.7.2", "resolved": "https://registry.npmjs.org/axios/-/axios-1.7.2.tgz", "integrity": integrity()},
                     "node_modules/react": {"version": "18.3.1", "resolved": "https://registry.npmjs.org/react/-/react-18.3.1.tgz", "integrity": integrity()},
                     "node_modules/next": {"version": "14.2.3", "resolved": "https://registry.npmjs.org/next/-/next-14.2.3.tgz", "integrity": integrity()}}}, indent=2) + "\n")

    emit("config/app.json", json.dumps({
        "service": "ledger", "listen": "0.0.0.0:8443", "tls": {"cert": "/etc/ssl/ledger.crt", "key": "/etc/ssl/ledger.key"},
        "database": {"host": "ledger-db", "user": "ledger", "password": S("password-assignment", pw(20))},
        "auth": {"client_id": uuid4(), "client_secret": S("oauth-client-secret", "GOCSPX-" + rs(B64URL, 28))},
        "datadog": {"api_key": S("datadog-api-key", hexs(32)), "site": "datadoghq.eu"},
        "build": {"commit": gitsha(), "date": "2026-11-02T09:14:55Z"}}, indent=2) + "\n")

    emit("config/app.sample.json", json.dumps({
        "database": {"host": "localhost", "user": "ledger", "password": ""},
        "auth": {"client_id": "YOUR_CLIENT_ID", "client_secret": "YOUR_CLIENT_SECRET"},
        "datadog": {"api_key": "<DATADOG_API_KEY>"}, "webhook_secret": "${WEBHOOK_SECRET}"}, indent=2) + "\n")

    f1, l1 = person()
    emit("requests/openai-chat.json", json.dumps({
        "model": "gpt-4o", "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are a helpful support assistant for Northwind Logistics."},
            {"role": "user", "content": "Hi, my name is %s %s. My account email is %s and my phone is %s. Please update my card on file to %s exp 09/28." % (
                f1, l1, P("email", email(f1, l1)), P("phone-nat-gb", intl_phone("GB", "nat")), P("credit-card-visa", card("visa", "space")))},
            {"role": "assistant", "content": "Thanks! For security, never share full card numbers in chat."}]}, indent=2) + "\n")

    f2, l2 = person()
    emit("requests/anthropic-messages.json", json.dumps({
        "model": "claude-sonnet-4-5", "max_tokens": 1024,
        "system": "You help engineers debug deployments.",
        "messages": [
            {"role": "user", "content": "Deploy fails with 403. Here is my env:\nAWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\nregion eu-central-1" % (
                S("aws-access-key-id", aws_id()), S("aws-secret-access-key", aws_secret()))},
            {"role": "assistant", "content": "Please rotate those keys immediately; they are now exposed."},
            {"role": "user", "content": "Done. Also our customer %s (SSN %s) cannot log in." % (f2 + " " + l2, P("us-ssn", ssn()))}]}, indent=2) + "\n")

    emit("requests/anthropic-clean.json", json.dumps({
        "model": "claude-haiku-4-5", "max_tokens": 256,
        "messages": [{"role": "user", "content": "Explain what AKIAIOSFODNN7EXAMPLE is and why docs use it. Also: what is sha256 %s?" % sha256hex()},
                     {"role": "user", "content": "Our order 2024-118834-7731 shipped on 2024-11-18; tracking 1Z999AA10123456784."}]}, indent=2) + "\n")

    nb_cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Churn analysis\n", "Loads data from the warehouse."]},
        {"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [],
         "source": ["import snowflake.connector\n", "conn = snowflake.connector.connect(\n", "    user='analyst',\n",
                    "    password='%s',\n" % S("password-assignment", pw(18)), "    account='kx12345.eu-central-1')\n"]},
        {"cell_type": "code", "execution_count": 2, "metadata": {}, "source": ["df.head(3)"],
         "outputs": [{"output_type": "execute_result", "data": {"text/plain": [
             "   customer_id                      email            phone\n",
             "0       881201  %s  %s\n" % (P("email", email()), P("phone-e164-fr", intl_phone("FR"))),
             "1       881202  %s  %s\n" % (P("email", email()), P("phone-nat-fr", intl_phone("FR", "nat")))]}}]},
        {"cell_type": "code", "execution_count": 3, "metadata": {}, "source": ["plt.plot(x, y)"],
         "outputs": [{"output_type": "display_data", "data": {"image/png": png_b64(600)}}]},
        {"cell_type": "code", "execution_count": 4, "metadata": {}, "source": ["import os\n", "key = os.environ['OPENAI_API_KEY']"], "outputs": []}]
    emit("notebooks/churn.ipynb", json.dumps({"cells": nb_cells, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n")

    emit("data/customers.json", json.dumps([
        {"id": 1001, "name": "%s %s" % person(), "email": P("email", email()), "iban": P("iban-de", iban("DE")), "created": "2023-06-14"},
        {"id": 1002, "name": "%s %s" % person(), "email": P("email", email()), "iban": P("iban-nl", iban("NL")), "created": "2023-07-02"},
        {"id": 1003, "name": "%s %s" % person(), "email": P("email", email()), "iban": P("iban-fr", iban("FR", "space")), "created": "2024-01-30"},
        {"id": 1004, "name": "Test Account", "email": "qa+1004@example.com", "iban": iban("DE", bad=True), "created": "2024-02-01"}], indent=2) + "\n")

    # ---------------------------------------------------------- Terraform
    emit("infra/main.tf", f'''terraform {{
  required_version = ">= 1.6.0"
  required_providers {{
    aws = {{
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }}
  }}
}}

provider "aws" {{
  region     = "us-east-1"
  access_key = "{S("aws-access-key-id", aws_id())}"
  secret_key = "{S("aws-secret-access-key", aws_secret())}"
}}

resource "aws_db_instance" "main" {{
  identifier        = "orders"
  engine            = "postgres"
  instance_class    = "db.t3.medium"
  username          = "orders"
  password          = var.db_password
  allocated_storage = 50
}}

resource "aws_iam_access_key" "ci" {{
  user = aws_iam_user.ci.name
}}
''')

    emit("infra/prod.tfvars", f'''db_password        = "{S("password-assignment", pw(24))}"
datadog_api_key    = "{S("datadog-api-key", hexs(32))}"
cloudflare_api_token = "{S("cloudflare-api-token", rs(B64URL, 40))}"
tfc_token          = "{S("terraform-cloud-token", rs(ALNUM, 14) + ".atlasv1." + rs(ALNUM, 67))}"
environment        = "prod"
instance_count     = 4
''')

    emit("infra/variables.tf", '''variable "db_password" {
  type        = string
  sensitive   = true
  description = "Master password for the orders database"
  default     = ""
}

variable "api_token" {
  type    = string
  default = "REPLACE_ME"
}
''')

    # ---------------------------------------------------------- INI / TOML / conf
    emit("config/pypirc.ini", f'''[distutils]
index-servers =
    pypi

[pypi]
username = __token__
password = {S("pypi-token", pypi())}
''')

    emit("config/settings.toml", f'''[server]
host = "0.0.0.0"
port = 9000

[database]
url = "{S("mysql-uri", "mysql://reporting:" + upw(16) + "@mysql.kestrel-analytics.io:3306/reports")}"
pool_size = 20

[smtp]
user = "reports"
password = "{S("password-assignment", pw(18))}"

[observability]
newrelic_key = "{S("newrelic-user-key", "NRAK-" + rs(UP + DG, 27))}"
trace_sample = 0.05
''')

    emit("config/Cargo.toml", f'''[package]
name = "fjord-ingest"
version = "0.9.2"
edition = "2021"
authors = ["{FIRST[9]} {LAST[9]} <{P("email", email(FIRST[9], LAST[9]))}>"]

[dependencies]
tokio = {{ version = "1.38", features = ["full"] }}
serde = "1.0.203"
''')

    emit("config/odbc.ini", f'''[warehouse]
Driver = PostgreSQL Unicode
Server = dwh.meridianbank.internal
Port = 5432
Database = dwh
UID = etl
PWD = {S("password-assignment", pw(16))}

[warehouse_readonly]
Driver = PostgreSQL Unicode
Server = dwh.meridianbank.internal
UID = readonly
PWD =
''')

    emit("config/nginx.conf", f'''server {{
    listen 443 ssl http2;
    server_name api.harborview-realty.com;

    ssl_certificate     /etc/nginx/tls/fullchain.pem;
    ssl_certificate_key /etc/nginx/tls/privkey.pem;

    location /internal/ {{
        proxy_set_header Authorization "Basic {S("basic-auth-credentials", base64.b64encode(("ops:" + pw(16)).encode()).decode())}";
        proxy_pass http://10.20.4.17:8080;
    }}

    location /metrics {{
        auth_basic "restricted";
        auth_basic_user_file /etc/nginx/.htpasswd;
    }}
}}
''')

    emit("config/apache-site.conf", f'''<VirtualHost *:443>
    ServerName intranet.northwindlogistics.com
    ServerAdmin {P("email", email())}
    DocumentRoot /var/www/intranet
    SSLEngine on
    SSLCertificateFile /etc/ssl/certs/intranet.crt
    SSLCertificateKeyFile /etc/ssl/private/intranet.key
    SetEnv DB_PASS "{S("password-assignment", pw(18))}"
    SetEnv APP_VERSION "5.2.11"
</VirtualHost>
''')

    emit("config/htpasswd", f'''admin:{bcrypt()}
metrics:$apr1${rs(ALNUM, 8)}${rs(ALNUM + "./", 22)}
''')

    # ---------------------------------------------------------- keys
    emit("keys/deploy_key", S("openssh-private-key", openssh_key()) + "\n")
    emit("keys/server.key.pem", S("rsa-private-key", pem("RSA PRIVATE KEY")) + "\n")
    emit("keys/ec.pem", S("ec-private-key", pem("EC PRIVATE KEY", 3)) + "\n")
    emit("keys/deploy_key.pub", ssh_pub() + "\n")
    emit("keys/public.pem", pubkey_pem() + "\n")
    emit("keys/ca.crt", cert_pem() + "\n")
    emit("keys/authorized_keys", ssh_pub() + "\n" + ed_pub() + "\n")

    emit("src/python/tls_fixture.py", f'''"""TLS test fixture: contains a certificate and a PUBLIC key only."""
CERT = """{cert_pem()}"""

PUBLIC_KEY = """{pubkey_pem()}"""

# Placeholder, replaced at deploy time
PRIVATE_KEY = """-----BEGIN PRIVATE KEY-----
...
-----END PRIVATE KEY-----"""
''')

    emit("src/go/signer.go", f'''package signer

// leaked while debugging, see INC-2291
const signingKey = `{S("rsa-private-key", pem("RSA PRIVATE KEY", 12))}`
''')

    # ---------------------------------------------------------- logs
    lines = []
    for i in range(40):
        ts = "2026-11-%02dT%02d:%02d:%02d.%03dZ" % (18 + i // 20, 8 + i // 6, (i * 7) % 60, (i * 13) % 60, R.randrange(1000))
        ip = "%d.%d.%d.%d" % (R.randrange(11, 223), R.randrange(256), R.randrange(256), R.randrange(1, 255))
        if i == 5:
            lines.append('%s INFO  auth  login ok user=%s ip=%s' % (ts, P("email", email()), ip))
        elif i == 11:
            lines.append('%s DEBUG http  outgoing request headers={"Authorization": "Bearer %s"}' % (ts, S("jwt", jwt(uuid4()))))
        elif i == 17:
            lines.append('%s ERROR db    connection failed dsn=%s' % (ts, S("postgres-uri", "postgres://reporter:" + upw(14) + "@10.2.0.15:5432/reports")))
        elif i == 23:
            lines.append('%s WARN  billing card declined card=%s customer=%s' % (ts, P("credit-card-mc", card("mc")), d(7)))
        elif i == 29:
            lines.append('%s INFO  sms   sent to=%s template=otp' % (ts, P("phone-e164-au", intl_phone("AU"))))
        elif i == 33:
            lines.append('%s DEBUG config loaded slack_token=%s' % (ts, S("slack-user-token", "xoxp-%s-%s-%s-%s" % (d(10), d(12), d(13), hexs(32)))))
        else:
            lines.append('%s INFO  http  %s "GET /api/v2/orders/%d HTTP/1.1" 200 %d %dms trace=%s' % (
                ts, ip, R.randrange(10**6, 10**7), R.randrange(200, 90000), R.randrange(1, 900), hexs(32)))
    lines.append("2026-11-19T16:00:00.000Z INFO  auth  password reset requested user_id=88123 password=[REDACTED]")
    lines.append("2026-11-19T16:00:01.000Z INFO  auth  token=**** expires_in=3600")
    lines.append("2026-11-19T16:00:02.000Z INFO  job   finished id=%s duration_ms=1732364400 rows=4111111111" % uuid4())
    emit("logs/app.log", "\n".join(lines) + "\n")

    al = []
    for i in range(30):
        ip = "%d.%d.%d.%d" % (R.randrange(11, 223), R.randrange(256), R.randrange(256), R.randrange(1, 255))
        path = "/products/%d?ref=%s" % (R.randrange(1000, 99999), hexs(8))
        if i == 7:
            path = "/api/login?email=%s&password=%s" % (P("email", email()), S("password-in-url", upw(14)))
        if i == 15:
            path = "/api/v1/export?api_key=%s" % S("stripe-live-restricted-key", stripe("rk_live_"))
        if i == 21:
            path = "/reset?token=%s" % hexs(32)
        al.append('%s - - [19/Nov/2026:%02d:%02d:%02d +0000] "GET %s HTTP/1.1" 200 %d "-" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0.6723.91"' % (
            ip, 10 + i // 10, (i * 3) % 60, (i * 11) % 60, path, R.randrange(300, 50000)))
    emit("logs/access.log", "\n".join(al) + "\n")

    emit("logs/worker.log", f'''[2026-11-20 03:12:44,118] INFO celery.worker: Task sync_crm[{uuid4()}] received
[2026-11-20 03:12:44,301] ERROR sync_crm: HubSpot API rejected payload for contact {P("email", email())} phone {P("phone-nat-de", intl_phone("DE", "nat"))}
[2026-11-20 03:12:45,002] INFO sync_crm: retry in 30s (attempt 2/5)
[2026-11-20 03:13:15,550] INFO sync_crm: ok, 1832 contacts, cursor=1732072395550
[2026-11-20 03:14:02,771] WARNING kyc: manual review needed, applicant ssn={P("us-ssn", ssn())} dob=1987-04-12
[2026-11-20 03:14:09,003] INFO kyc: applicant ssn=***-**-{d(4)} cleared
[2026-11-20 03:15:00,000] INFO payouts: sent to IBAN {P("iban-gb", iban("GB"))} amount=1250.00 GBP
[2026-11-20 03:15:01,000] INFO payouts: sent to IBAN GB** **** **** **** **{d(2)} (masked)
''')

    emit("logs/auth-debug.log", f'''2026-11-21 10:02:11 DEBUG OAuth token response: {{"access_token": "{S("github-oauth-token", gh("gho_"))}", "token_type": "bearer", "scope": "repo"}}
2026-11-21 10:02:12 DEBUG installation token {S("github-app-token", gh("ghs_"))} expires 2026-11-21T11:02:12Z
2026-11-21 10:02:13 DEBUG commit {gitsha()} verified, tree {gitsha()}
2026-11-21 10:02:14 INFO  request_id={uuid4()} status=200 latency_ms=84
''')

    # ---------------------------------------------------------- Markdown
    emit("README.md", f'''# Harborview Web

Next.js front end for listings.

## Setup

```bash
cp .env.example .env
export OPENAI_API_KEY=sk-...            # your own key
export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
npm ci && npm run dev
```

Use the AWS documentation keys for the local S3 mock:

```
AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
```

Stripe test cards: `4242 4242 4242 4242` (any CVC), test key `sk_test_...`.

Contact: open an issue. Released as v2.14.0 on 2026-10-01 (commit {gitsha()[:12]}).
''')

    emit("docs/runbook.md", f'''# Incident runbook: payments

## Access

The break-glass credentials are in the vault, **not** here. (Historic note: the
old ones were `{S("password-assignment", pw(16))}` for the `postgres` superuser; rotated?)

Temporary admin API token issued for the migration:

    Authorization: Bearer {S("github-fine-grained-pat", gh_fine())}

## Escalation

| Role | Name | Phone | Email |
|------|------|-------|-------|
| Primary | {FIRST[4]} {LAST[4]} | {P("phone-intl-us", us_phone("intl"))} | {P("email", email(FIRST[4], LAST[4]))} |
| Secondary | {FIRST[5]} {LAST[5]} | {P("phone-intl-jp", intl_phone("JP", "intl"))} | {P("email", email(FIRST[5], LAST[5]))} |
| Vendor | Acme Support | +1 555 0100 | support@example.com |

Dashboard: https://grafana.internal/d/{rs(ALNUM, 9)}/payments?orgId=1&from=1732060800000
''')

    emit("docs/api.md", f'''# API reference

Authenticate with a bearer token:

```http
GET /v1/orders HTTP/1.1
Authorization: Bearer <YOUR_TOKEN>
```

Example keys look like `sk_live_XXXXXXXXXXXXXXXXXXXXXXXX` and `xoxb-0000000000-0000000000000-XXXXXXXXXXXXXXXXXXXXXXXX`.

```python
client = Client(api_key=os.environ["API_KEY"])
client = Client(api_key="YOUR_API_KEY")
password = getpass.getpass()
```

Sample response:

```json
{{"id": "ord_1N3kq2LkdIwHu7ix", "email": "jane@example.com", "phone": "{A("fictional-555-phone", "+1-555-555-0199")}",
 "created": 1700000000, "amount": 12999, "card_last4": "4242"}}
```

Order numbers are 16 digits, e.g. `2024111800001234`; invoice `INV-2024-000981`.
Version history: 1.0.0, 1.2.3, 10.4.12. IP 192.168.1.10. Build 20241118.1.
''')

    emit("docs/onboarding.md", f'''# Onboarding — Data team

Welcome {FIRST[6]}! Your buddy is {FIRST[7]} {LAST[7]} ({P("email", email(FIRST[7], LAST[7]))}, mobile {P("phone-nat-au", intl_phone("AU", "nat"))}).

1. Ask IT for a laptop; the Wi-Fi password is posted in the office.
2. Request Snowflake access. Our account locator is `KX12345`.
3. The shared HF org token for read-only model pulls: `{S("huggingface-token", hf())}`
4. The shared npm read token: set `//registry.npmjs.org/:_authToken={S("npm-token", npm())}` in `~/.npmrc`.

Expense reimbursements go to your IBAN; HR has {P("iban-es", iban("ES", "space"))} on file for the team card.
''')

    emit("CHANGELOG.md", f'''# Changelog

## 2.14.0 - 2026-10-01
- Upgrade next to 14.2.3 (integrity {integrity()[:40]}...)
- Fix phone formatting for +44 numbers (#1182)
- Rotate leaked token (see {gitsha()[:7]})

## 2.13.2 - 2026-09-12
- Bump axios 1.7.2; CVE-2024-39338
''')

    # ---------------------------------------------------------- CSV
    rows = ["customer_id,first_name,last_name,email,phone,card_number,ssn,signup_date"]
    for i in range(12):
        f, l = person()
        ph = [us_phone("dash"), intl_phone("GB", "e164"), intl_phone("BR", "intl"), intl_phone("DE", "e164")][i % 4]
        brand = ["visa", "mc", "amex", "discover"][i % 4]
        cn = card(brand, ["plain", "space", "dash"][i % 3])
        rows.append("%d,%s,%s,%s,%s,%s,%s,2025-%02d-%02d" % (
            500100 + i, f, l, P("email", email(f, l)), P("phone", ph), P("credit-card-" + brand, cn), P("us-ssn", ssn()), 1 + i % 12, 1 + i))
    emit("data/export_customers.csv", "\n".join(rows) + "\n")

    rows = ["order_id,sku,qty,unit_price,created_at,tracking"]
    for i in range(15):
        rows.append("%s,SKU-%s,%d,%d.%02d,%d,%s" % (d(16), rs(UP + DG, 8), R.randrange(1, 9), R.randrange(1, 500), R.randrange(100), 1732000000 + R.randrange(10**6), bad_card()))
    emit("data/orders.csv", "\n".join(rows) + "\n")

    rows = ["account_holder,iban,bic,amount_eur"]
    for cc in ["DE", "IT", "CH", "BE", "NL"]:
        rows.append('"%s %s",%s,%s,%d.00' % (*person(), P("iban-" + cc.lower(), iban(cc)), rs(UP, 6) + "XX", R.randrange(100, 9000)))
    rows.append('"Muster GmbH",DE00123456780000000000,TESTDEFFXXX,0.00')
    emit("data/sepa_batch.csv", "\n".join(rows) + "\n")

    # ---------------------------------------------------------- emails / tickets
    f, l = person()
    emit("tickets/TCK-48812.eml", f'''From: {f} {l} <{P("email", email(f, l))}>
To: {A("role-email", "support@northwindlogistics.com")}
Subject: Refund for order 2026111800412
Date: Tue, 18 Nov 2026 09:41:07 +0100
Message-ID: <{uuid4()}@mail.gmail.com>

Hello,

I was charged twice for order 2026111800412. The card used was {P("credit-card-amex", card("amex", "space"))}.
You can reach me at {P("phone-nat-fr", intl_phone("FR", "nat"))} or on my mobile {P("phone-e164-fr", intl_phone("FR"))}.
Please refund to my bank account {P("iban-fr", iban("FR"))}.

Thanks,
{f}
''')

    f, l = person()
    emit("tickets/ZD-20931.md", f'''**Ticket ZD-20931** — priority: high — requester: {P("email", email(f, l))}

> My tax form shows the wrong SSN. It should be {P("us-ssn", ssn())}, not the one ending in {d(4)}.
> Call me at {P("phone-dash-us", us_phone("dash"))} after 5pm.

Internal note (agent {FIRST[10]}): verified identity via DOB. Customer ref 4400-2211-9087-1.
Example format for agents: SSN 123-45-6789 / 000-00-0000 are invalid placeholders.
''')

    f, l = person()
    emit("tickets/escalation.txt", f'''Escalation from the Berlin office
Caller: {f} {l}, phone {P("phone-intl-de", intl_phone("DE", "intl"))}, email {P("email", email(f, l))}
Issue: payroll deposit bounced; account {P("iban-de", iban("DE", "space"))}
Second caller: {P("phone-nat-in", intl_phone("IN", "nat"))} (Bangalore team lead)
Ticket opened 2026-11-20 14:03, SLA 4h, case number 5012-7741-0093.
''')

    # ---------------------------------------------------------- shell history
    emit("home/.bash_history", f'''ls -la
cd ~/src/ledger
git log --oneline -5
export GITHUB_TOKEN={S("github-pat-classic", gh())}
gh repo clone meridianbank/ledger
mysql -u root -p{S("password-assignment", pw(14))} -h 127.0.0.1 core
curl -H "Authorization: Bearer {S("gitlab-pat", gitlab())}" https://gitlab.com/api/v4/projects
curl -u admin:{S("password-in-url", upw(12))} https://jenkins.meridianbank.internal/job/deploy/build
docker login -u harborview -p {S("dockerhub-pat", docker())}
psql "postgresql://postgres:postgres@localhost:5432/postgres"
aws s3 ls s3://meridian-backups --profile prod
kubectl get pods -n payments
history | grep token
echo $DB_PASSWORD
sha256sum release.tar.gz
''')

    emit("home/.zsh_history", f''': 1732101001:0;brew upgrade
: 1732101044:0;export ANTHROPIC_API_KEY={S("anthropic-api-key", anthropic())}
: 1732101102:0;python3 -m pytest -q
: 1732101190:0;npm config set //registry.npmjs.org/:_authToken ${{NPM_TOKEN}}
: 1732101201:0;ssh deploy@10.0.4.12
''')

    emit("home/.npmrc", f'''registry=https://registry.npmjs.org/
//registry.npmjs.org/:_authToken={S("npm-token", npm())}
@harborview:registry=https://npm.pkg.github.com
//npm.pkg.github.com/:_authToken=${{GITHUB_TOKEN}}
''')

    emit("home/.docker/config.json", json.dumps({"auths": {"https://index.docker.io/v1/": {
        "auth": S("docker-auth-basic", base64.b64encode(("harborview:" + pw(18)).encode()).decode())}},
        "credsStore": "", "currentContext": "default"}, indent=2) + "\n")

    emit("home/.git-credentials", f'''https://ci-bot:{S("github-pat-classic", gh())}@github.com
''')

    emit("home/.aws/credentials", f'''[default]
aws_access_key_id = {S("aws-access-key-id", aws_id())}
aws_secret_access_key = {S("aws-secret-access-key", aws_secret())}

[sts-session]
aws_access_key_id = {S("aws-temp-access-key-id", aws_id("ASIA"))}
aws_secret_access_key = {S("aws-secret-access-key", aws_secret())}
aws_session_token = {S("aws-session-token", "IQoJb3JpZ2luX2VjE" + rs(B64, 300))}

[example]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
''')


    # ---------------------------------------------------------- more vendors / harder cases
    emit("services/platform/.env.staging", f'''# staging credentials (rotate quarterly)
AZURE_CLIENT_ID={uuid4()}
AZURE_TENANT_ID={uuid4()}
AZURE_CLIENT_SECRET={S("azure-ad-client-secret", rs(ALNUM, 3) + "8Q~" + rs(ALNUM + "~_.-", 34))}
STRIPE_WEBHOOK_SECRET={S("stripe-webhook-secret", "whsec_" + rs(ALNUM, 32))}
ATLASSIAN_API_TOKEN={S("atlassian-api-token", "ATATT3xFfGF0" + rs(B64URL, 170) + "=" + hexs(8).upper())}
DATABRICKS_TOKEN={S("databricks-token", "dapi" + hexs(32))}
PLANETSCALE_PASSWORD={S("planetscale-password", "pscale_pw_" + rs(B64URL, 43))}
DOPPLER_TOKEN={S("doppler-token", "dp.st.prd." + rs(ALNUM, 40))}
PULUMI_ACCESS_TOKEN={S("pulumi-token", "pul-" + hexs(40))}
GOOGLE_REFRESH_TOKEN={S("google-oauth-refresh-token", "1//0" + rs(B64URL, 99))}
SQUARE_ACCESS_TOKEN={S("square-access-token", "EAAA" + rs(B64URL, 60))}
AGE_KEY={S("age-secret-key", "AGE-SECRET-KEY-1" + rs("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".upper(), 58))}
SUPABASE_SERVICE_ROLE_KEY={S("jwt", jwt("service_role", {"role": "service_role", "iss": "supabase"}))}
STRIPE_PUBLISHABLE_KEY=pk_live_{rs(ALNUM, 99)}
ALGOLIA_APP_ID={rs(UP + DG, 10)}
SENTRY_RELEASE={gitsha()}
''')

    emit("src/python/cache.py", f'''"""Names that look sensitive, values that are not."""
cache_key = "user:{d(6)}:profile:v2"
idempotency_key = "{uuid4()}"
token_type = "bearer"
secret_name = "payments/stripe/live"
password_reset_url = "https://app.harborview-realty.com/reset"
api_key_id = "key_{d(4)}"
public_key_fingerprint = "SHA256:{b64u(bytes(R.randrange(256) for _ in range(32)))}"
session_cookie_name = "__Host-session"
auth_header = "Authorization"
token_url = "https://oauth2.googleapis.com/token"
PASSWORD_REGEX = r"^(?=.*[A-Z])(?=.*\\d).{{12,}}$"
etag = 'W/"{hexs(32)}"'
nonce_length = 32
client_secret = os.environ.get("CLIENT_SECRET", "")
password = config["database"]["password"]
secret = "{{{{ vault_db_password }}}}"
api_key = "{{{{ .Values.apiKey }}}}"
token = "%(token)s"
''')

    f, l = person()
    emit("docs/customer-call-notes.md", f'''# Call notes — 2026-11-19

Spoke with {f} {l} (mailto:{P("email", email(f, l))}). Best number: {P("phone-nat-jp", intl_phone("JP", "nat"))},
or WhatsApp {P("phone-nat-br", intl_phone("BR", "nat"))}. They asked us to charge card
{P("credit-card-discover", card("discover", "dash"))} for the renewal and to file SSN {P("us-ssn-nodash", ssn(""))} with the W-9.

Not PII: invoice 2026-000418, PO 4500018872, tracking 1Z{rs(UP + DG, 16)}, IPv6 2001:db8::1,
MAC 3c:22:fb:9a:10:4e, build 10.0.19045.3693, coordinates 52.520008, 13.404954,
timestamp 1763545200, duration 00:14:52, amount $1,234,567.89, ZIP 94103-1234.
''')

    emit("data/payments.json", json.dumps({"payments": [
        {"id": "pay_%s" % rs(ALNUM, 14), "card_number": P("credit-card-visa", card("visa")), "exp": "07/29", "holder": "%s %s" % person()},
        {"id": "pay_%s" % rs(ALNUM, 14), "card_number": P("credit-card-mc", card("mc", "space")), "exp": "11/27", "holder": "%s %s" % person()},
        {"id": "pay_%s" % rs(ALNUM, 14), "card_last4": d(4), "fingerprint": rs(ALNUM, 16), "created": 1763545200},
        {"id": "pay_%s" % rs(ALNUM, 14), "card_number": "**** **** **** %s" % d(4), "order_ref": bad_card()}]}, indent=2) + "\n")


    def luhn16(first):
        base = first + d(14)
        return base + luhn_digit(base)

    emit("config/users.seed.yaml", f'''# Seed users: passwords are stored hashed, secrets are references
users:
  - username: admin
    password: "{bcrypt()}"
  - username: reporter
    password_hash: "$argon2id$v=19$m=65536,t=3,p=4${b64u(bytes(R.randrange(256) for _ in range(16)))}${b64u(bytes(R.randrange(256) for _ in range(32)))}"
  - username: legacy
    password: "{{SSHA}}{base64.b64encode(bytes(R.randrange(256) for _ in range(24))).decode()}"
database:
  password: ENC[AES256_GCM,data:{base64.b64encode(bytes(R.randrange(256) for _ in range(18))).decode()},iv:{base64.b64encode(bytes(R.randrange(256) for _ in range(32))).decode()},tag:{base64.b64encode(bytes(R.randrange(256) for _ in range(16))).decode()},type:str]
  password_ref: vault:secret/data/prod/db#password
  password_arn: arn:aws:secretsmanager:eu-west-1:{d(12)}:secret:prod/db-{rs(ALNUM, 6)}
  api_token: "{{{{ .Values.apiToken }}}}"
  smtp_password: !vault |
    $ANSIBLE_VAULT;1.1;AES256
    {hexs(64)}
    {hexs(64)}
oauth:
  client_id: "{d(12)}-{rs(LO + DG, 32)}.apps.googleusercontent.com"
  redirect_uri: https://app.kestrel-analytics.io/oauth/callback
''')

    emit("logs/events.jsonl", "\n".join(json.dumps(e) for e in [
        {"ts": 1763545200123, "event": "order.created", "order_id": luhn16("9"), "account_id": d(12), "amount_cents": 129900},
        {"ts": 1763545201456, "event": "message.sent", "discord_message_id": "11837288" + d(11), "channel": "C0" + rs(UP + DG, 9)},
        {"ts": 1763545202789, "event": "shipment", "tracking": luhn16("1"), "weight_g": 1250, "zip": "10115"},
        {"ts": 1763545203000, "event": "login", "user_id": d(10), "ip": "203.0.113.%d" % R.randrange(1, 255), "ua_version": "130.0.6723.91"},
        {"ts": 1763545204000, "event": "profile.updated", "user": P("email", email()), "phone": P("phone-e164-in", intl_phone("IN"))},
        {"ts": 1763545205000, "event": "kyc", "ssn_last4": d(4), "dob": "1990-02-14", "tax_id_masked": "***-**-%s" % d(4)},
        {"ts": 1763545206000, "event": "gcp", "project_number": d(12), "instance_id": d(19), "trace": hexs(32)}]) + "\n")

    # ---------------------------------------------------------- hard-negative-only files
    emit("src/python/constants.py", f'''"""Hard negatives only."""
GIT_SHA = "{gitsha()}"
IMAGE_DIGEST = "sha256:{sha256hex()}"
INTEGRITY = "{integrity()}"
REQUEST_UUID = "{uuid4()}"
LOGO_PNG = "data:image/png;base64,{png_b64(240)}"
MD5 = "{hexs(32)}"
EPOCH_MS = 1732364400123
ORDER_ID = 4000123412341234
NOT_A_CARD = "{bad_card()}"
NOT_AN_SSN = "000-12-3456"
NOT_AN_SSN_2 = "666-45-1234"
NOT_AN_SSN_3 = "912-34-5678"
BAD_IBAN = "{iban("DE", bad=True)}"
EXAMPLE_EMAIL = "alice@example.com"
EXAMPLE_EMAIL_2 = "bob@example.org"
NOREPLY = "noreply@localhost"
VERSION = "10.4.12"
DATE = "2026-11-23"
PHONE_LIKE_TIMESTAMP = "20261123143055"
ISBN = "978-0-13-468599-1"
PASSWORD_FIELD = "password"
PASSWORD_MIN_LENGTH = 12
API_KEY_HEADER = "X-API-Key"
TOKEN_ENV = "GITHUB_TOKEN"
SECRET = "${{SECRET}}"
PASSWORD = "changeme"
API_KEY = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
DUMMY_JWT = "<jwt>"
''')

    emit("deploy/k8s/configmap.yaml", f'''apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  LOG_LEVEL: info
  FEATURE_CHECKOUT_V2: "true"
  PASSWORD_POLICY: "min=12,upper=1,digit=1"
  SESSION_TTL_SECONDS: "3600"
  BUILD_SHA: {gitsha()}
  TRACE_ID_HEADER: x-b3-traceid
  PUBLIC_SSH_KEY: "{ed_pub()}"
''')

    emit("src/js/assets.js", f'''export const ICON = "data:image/png;base64,{png_b64(900)}";
export const FONT_HASH = "{hexs(40)}";
export const SRI = "{integrity()}";
''')

    emit("docs/security.md", '''# Handling secrets

Never hard-code credentials. Good:

```python
password = os.environ["PASSWORD"]
token = settings.API_TOKEN
db_url = f"postgres://{user}:{password}@{host}/db"
```

Bad (illustrative, not real): `password = "hunter2"`, `api_key = "1234567890abcdef"`.

Private keys begin with `-----BEGIN RSA PRIVATE KEY-----` and must never be committed.
Tokens such as `ghp_...`, `xoxb-...`, `AKIA...` are detected by the pre-commit hook.
Redacted examples: `sk-ant-api03-****`, `glpat-XXXXXXXXXXXXXXXXXXXX`.
''')

    emit("src/python/phone_utils.py", f'''import re

E164 = re.compile(r"^\\+[1-9]\\d{{1,14}}$")
# Examples from the ITU spec and NANP fiction range:
EXAMPLES = ["{A("fictional-phones", "+15555550100")}", "(555) 555-0199", "+44 20 7946 0000"]
MAX_RETRIES = 3
TIMEOUT_MS = 15000
ORDER = 1234567890
'''
         )


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    build()
    LABELS.sort(key=lambda x: (x["file"], x["line"], x["category"]))
    with open(os.path.join(HERE, "labels.json"), "w") as fh:
        json.dump(LABELS, fh, indent=1)
        fh.write("\n")
    cats = {}
    for l in LABELS:
        cats[l["category"]] = cats.get(l["category"], 0) + 1
    print("%d files, %d labels %s" % (len(FILES), len(LABELS), cats))


if __name__ == "__main__":
    main()
