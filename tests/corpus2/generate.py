#!/usr/bin/python3
"""Generate tests/corpus2 (blind second corpus). Deterministic: seed fixed."""
import base64, hashlib, json, os, random, shutil, string, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "files")
R = random.Random(20261204)
A62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
AN = string.ascii_letters + string.digits
LABELS = []


def rs(n, cs=AN):
    return "".join(R.choice(cs) for _ in range(n))


def hx(n):
    return rs(n, "0123456789abcdef")


def b62(n):
    s = ""
    while n:
        n, r = divmod(n, 62)
        s = A62[r] + s
    return s.rjust(6, "0")


def gh(prefix):
    body = rs(30)
    return prefix + body + b62(zlib.crc32(body.encode()) & 0xffffffff)


def luhn_ok(d):
    t = 0
    for i, c in enumerate(reversed(d)):
        v = int(c)
        if i % 2:
            v *= 2
            v -= 9 if v > 9 else 0
        t += v
    return t % 10 == 0


def card(prefix, length):
    while True:
        d = prefix + rs(length - len(prefix) - 1, string.digits)
        for c in string.digits:
            if luhn_ok(d + c):
                return d + c


def bad_card():
    d = card("4", 16)
    return d[:-1] + str((int(d[-1]) + 3) % 10)


def iban(cc, bblen, chars=string.digits):
    bban = rs(bblen, chars)
    num = "".join(str(int(c, 36)) for c in bban + cc + "00")
    return cc + "%02d" % (98 - int(num) % 97) + bban


def spaced(s):
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def ssn():
    while True:
        a = R.randint(1, 899)
        if a != 666:
            return "%03d-%02d-%04d" % (a, R.randint(1, 99), R.randint(1, 9999))


FIRST = ["Maren", "Tobias", "Aiko", "Rahul", "Lucía", "Jonas", "Chiara", "Obinna", "Sanne", "Dmitri", "Priya", "Yusuf", "Hélène", "Mateus", "Keiko", "Niamh"]
LAST = ["Okafor", "Lindqvist", "Tanaka", "Iyer", "Moreau", "Brandt", "Ferreira", "Walsh", "Novak", "Haddad", "Kowalczyk", "Ramos"]
DOM = ["gmail.com", "outlook.de", "yahoo.co.uk", "proton.me", "orange.fr", "uol.com.br", "fastmail.com", "icloud.com"]


def person():
    f, l = R.choice(FIRST), R.choice(LAST)
    return f, l, "%s.%s%d@%s" % (f.lower().replace("í", "i").replace("é", "e"), l.lower(), R.randint(1, 99), R.choice(DOM))


def phone(kind):
    d = lambda n: rs(n, string.digits)
    return {
        "us": lambda: "(%d%s) %d%s-%s" % (R.randint(2, 9), d(2), R.randint(2, 9), d(2), d(4)),
        "us2": lambda: "+1 %d%s-%d%s-%s" % (R.randint(2, 9), d(2), R.randint(2, 9), d(2), d(4)),
        "uk": lambda: "+44 7%s %s" % (d(3), d(6)),
        "uk2": lambda: "07%s %s" % (d(3), d(6)),
        "de": lambda: "+49 1%d%d %s" % (R.choice([5, 6, 7]), R.randint(0, 9), d(8)),
        "fr": lambda: "+33 6 %s %s %s %s" % (d(2), d(2), d(2), d(2)),
        "fr2": lambda: "06 %s %s %s %s" % (d(2), d(2), d(2), d(2)),
        "br": lambda: "+55 11 9%s-%s" % (d(4), d(4)),
        "in": lambda: "+91 9%s %s" % (d(4), d(5)),
        "jp": lambda: "+81 90-%s-%s" % (d(4), d(4)),
        "e164": lambda: "+4915%s" % d(9),
    }[kind]()


class F:
    def __init__(self, path):
        self.path, self.buf = path, bytearray()

    def w(self, *parts):
        for p in parts:
            if isinstance(p, tuple):
                cat, kind, val = p
                s = len(self.buf)
                b = val.encode()
                self.buf += b
                LABELS.append({"file": self.path, "line": self.buf.count(b"\n", 0, s) + 1, "category": cat,
                               "kind": kind, "value_sha256": hashlib.sha256(b).hexdigest(), "start": s, "end": s + len(b)})
            else:
                self.buf += p.encode()
        self.buf += b"\n"
        return self

    def save(self):
        p = os.path.join(OUT, self.path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        open(p, "wb").write(bytes(self.buf))


S = lambda k, v: ("secret", k, v)
P = lambda k, v: ("pii", k, v)
AMB = lambda k, v: ("ambiguous", k, v)

# ---- value factories -------------------------------------------------
def aws_id(): return "AKIA" + rs(16, string.ascii_uppercase + "234567")
def aws_sts(): return "ASIA" + rs(16, string.ascii_uppercase + "234567")
def aws_sec(): return rs(40, AN + "+/")
SEC = {
    "github_pat_classic": lambda: gh("ghp_"),
    "github_oauth": lambda: gh("gho_"),
    "github_app_server": lambda: gh("ghs_"),
    "github_user_to_server": lambda: gh("ghu_"),
    "github_fine_grained_pat": lambda: "github_pat_" + rs(22) + "_" + rs(59),
    "stripe_secret_live": lambda: "sk_live_" + rs(99),
    "stripe_restricted_live": lambda: "rk_live_" + rs(99),
    "slack_bot_token": lambda: "xoxb-%s-%s-%s" % (rs(12, string.digits), rs(13, string.digits), rs(24)),
    "slack_user_token": lambda: "xoxp-%s-%s-%s-%s" % (rs(12, string.digits), rs(12, string.digits), rs(13, string.digits), hx(32)),
    "slack_webhook": lambda: "https://hooks.slack.com/services/T%s/B%s/%s" % (rs(8, string.ascii_uppercase + string.digits), rs(10, string.ascii_uppercase + string.digits), rs(24)),
    "openai_project_key": lambda: "sk-proj-" + rs(74, AN + "-_") + "T3BlbkFJ" + rs(74, AN + "-_"),
    "openai_legacy_key": lambda: "sk-" + rs(20) + "T3BlbkFJ" + rs(20),
    "anthropic_api_key": lambda: "sk-ant-api03-" + rs(93, AN + "-_") + "AA",
    "google_api_key": lambda: "AIza" + rs(35, AN + "-_"),
    "sendgrid_api_key": lambda: "SG." + rs(22, AN + "-_") + "." + rs(43, AN + "-_"),
    "twilio_api_key_sid": lambda: "SK" + hx(32),
    "npm_token": lambda: "npm_" + rs(36),
    "pypi_token": lambda: "pypi-AgEIcHlwaS5vcmc" + rs(70, AN + "-_"),
    "gitlab_pat": lambda: "glpat-" + rs(20, AN + "-_"),
    "huggingface_token": lambda: "hf_" + rs(34, string.ascii_letters),
    "databricks_token": lambda: "dapi" + hx(32),
    "shopify_access_token": lambda: "shpat_" + hx(32),
    "vault_token": lambda: "hvs." + rs(90, AN + "_-"),
    "doppler_token": lambda: "dp.st.prd." + rs(40),
    "terraform_cloud_token": lambda: rs(14) + ".atlasv1." + rs(67),
    "mailgun_api_key": lambda: "key-" + hx(32),
    "telegram_bot_token": lambda: "%d:AA%s" % (R.randint(1000000000, 7999999999), rs(33, AN + "_-")),
    "discord_webhook": lambda: "https://discord.com/api/webhooks/%s/%s" % (rs(18, string.digits), rs(68, AN + "_-")),
    "datadog_api_key": lambda: hx(32),
    "datadog_app_key": lambda: hx(40),
    "generic_password": lambda: rs(10) + R.choice("!#%") + rs(8),
    "generic_api_key": lambda: rs(32),
    "django_secret_key": lambda: rs(50, string.ascii_lowercase + string.digits + "!@#%^&*(-_=+)"),
    "azure_storage_key": lambda: base64.b64encode(bytes(R.getrandbits(8) for _ in range(64))).decode(),
    "jwt": None,
    "digitalocean_token": lambda: "dop_v1_" + hx(64),
    "grafana_service_account": lambda: "glsa_" + rs(32) + "_" + hx(8),
    "new_relic_user_key": lambda: "NRAK-" + rs(27, string.ascii_uppercase + string.digits),
    "sentry_auth_token": lambda: "sntrys_" + rs(60),
    "linear_api_key": lambda: "lin_api_" + rs(40),
    "postman_api_key": lambda: "PMAK-" + hx(24) + "-" + hx(34),
    "atlassian_api_token": lambda: "ATATT3xFfGF0" + rs(170, AN + "-_") + "=" + hx(8).upper(),
    "pulumi_token": lambda: "pul-" + hx(40),
    "square_access_token": lambda: "EAAA" + rs(60, AN + "-_"),
    "age_secret_key": lambda: "AGE-SECRET-KEY-1" + rs(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"),
}


def b64u(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def jwt():
    h = b64u(b'{"alg":"HS256","typ":"JWT"}')
    p = b64u(json.dumps({"sub": rs(12, string.digits), "iat": 1760000000 + R.randint(0, 9999999), "role": "service"}).encode())
    return h + "." + p + "." + b64u(bytes(R.getrandbits(8) for _ in range(32)))


SEC["jwt"] = jwt


def pem(kind, header):
    body = base64.b64encode(bytes(R.getrandbits(8) for _ in range(R.randint(600, 900)))).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN %s-----\n" % header + "\n".join(lines) + "\n-----END %s-----" % header


def s(k):
    return S(k, SEC[k]())


def cs(kind, v):
    return S(kind, v)


# ---- files -------------------------------------------------------------
def pem_file(path, kind, header):
    f = F(path)
    v = pem(kind, header)
    f.buf += b""
    start = len(f.buf)
    f.w(S(kind, v))
    f.save()


def build():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    # PEMs: label the whole block at the BEGIN line
    for path, kind, hdr in [("keys/deploy_rsa.pem", "rsa_private_key", "RSA PRIVATE KEY"),
                            ("keys/tls.key", "pkcs8_private_key", "PRIVATE KEY"),
                            ("keys/ec.key", "ec_private_key", "EC PRIVATE KEY"),
                            ("keys/backup.key", "encrypted_private_key", "ENCRYPTED PRIVATE KEY"),
                            ("home/.ssh/id_ed25519", "openssh_private_key", "OPENSSH PRIVATE KEY"),
                            ("keys/legacy_dsa.key", "dsa_private_key", "DSA PRIVATE KEY")]:
        pem_file(path, kind, hdr)
    f = F("keys/signing.asc")
    f.w(S("pgp_private_key", pem("pgp", "PGP PRIVATE KEY BLOCK").replace("BLOCK-----\n", "BLOCK-----\nVersion: GnuPG v2\n\n", 1)))
    f.save()
    f = F("keys/server.ppk")
    f.w("PuTTY-User-Key-File-3: ssh-rsa"); f.w("Encryption: none"); f.w("Comment: rsa-key-20250311")
    f.w("Public-Lines: 6"); [f.w(rs(64, AN + "+/")) for _ in range(6)]
    pl = rs(64, AN + "+/")
    f.w("Private-Lines: 14"); f.w(S("putty_private_key", pl)); [f.w(rs(64, AN + "+/")) for _ in range(13)]
    f.w("Private-MAC: " + hx(64)); f.save()
    # public material: negatives
    f = F("keys/id_ed25519.pub"); f.w("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rs(43, AN + "+/") + " ci@build-07"); f.save()
    f = F("keys/ca.crt"); f.w(pem("x", "CERTIFICATE")); f.save()
    f = F("keys/pub.pem"); f.w(pem("x", "PUBLIC KEY")); f.save()

    # source code
    f = F("src/payments/client.py")
    f.w("import os, stripe"); f.w("")
    f.w('stripe.api_key = "', s("stripe_secret_live"), '"')
    f.w('TEST_KEY = "sk_test_' + rs(24) + '"  # unit tests only')
    f.w('OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "YOUR_API_KEY")')
    f.w('anthropic_key = "', s("anthropic_api_key"), '"')
    f.w('COMMIT = "' + hx(40) + '"')
    f.w('REQUEST_ID = "' + "%s-%s-4%s-a%s-%s" % (hx(8), hx(4), hx(3), hx(3), hx(12)) + '"')
    f.w('def charge(customer_email="jane.doe@example.com"):'); f.w("    return None"); f.save()

    f = F("cmd/api/main.go")
    f.w("package main"); f.w(""); f.w('import "database/sql"'); f.w("")
    pw = rs(18)
    f.w('const dsn = "svc_orders:', S("mysql_go_dsn_password", pw), '@tcp(db-orders.internal:3306)/orders?parseTime=true"')
    f.w('var githubToken = "', s("github_pat_classic"), '"')
    f.w('// version v1.24.3, build 20251104.1732'); f.w("func main() { sql.Open(\"mysql\", dsn) }"); f.save()

    f = F("src/main/java/com/acme/Config.java")
    f.w("package com.acme;"); f.w("public final class Config {")
    f.w('    static final String JDBC = "jdbc:postgresql://pg.prod:5432/ledger?user=ledger&password=', S("jdbc_password", rs(16)), '";')
    f.w('    static final String SENDGRID = "', s("sendgrid_api_key"), '";')
    f.w('    static final String PLACEHOLDER = "${DB_PASSWORD}";'); f.w("}"); f.save()

    f = F("web/src/firebase.ts")
    f.w("export const firebaseConfig = {")
    f.w('  apiKey: "', s("google_api_key"), '",'); f.w('  authDomain: "acme-prod.firebaseapp.com",'); f.w('  projectId: "acme-prod",'); f.w("};")
    f.w('export const HF_TOKEN = "', s("huggingface_token"), '";'); f.save()

    f = F("web/server.js")
    f.w("const { WebClient } = require('@slack/web-api');")
    f.w("const slack = new WebClient('", s("slack_bot_token"), "');")
    f.w("const webhook = '", s("slack_webhook"), "';")
    f.w("const redis = createClient({ url: 'redis://:", S("redis_password", rs(24)), "@cache.internal:6379/0' });")
    f.w("const logo = 'data:image/png;base64," + base64.b64encode(bytes(R.getrandbits(8) for _ in range(120))).decode() + "';"); f.save()

    f = F("crates/sync/src/main.rs")
    f.w("fn main() {")
    f.w('    let token = "', s("gitlab_pat"), '";')
    f.w('    let url = "amqp://sync:', S("amqp_password", rs(20)), '@rabbit.internal:5672/%2f";')
    f.w('    let digest = "sha256:' + hx(64) + '";'); f.w("}"); f.save()

    f = F("Services/Mailer.cs")
    f.w("public class Mailer {")
    f.w('  const string Conn = "Server=tcp:sql-prod.database.windows.net,1433;Database=crm;User ID=crm_app;Password=', S("adonet_password", rs(20)), ';Encrypt=True;";')
    f.w('  const string Storage = "DefaultEndpointsProtocol=https;AccountName=acmeblobs;AccountKey=', s("azure_storage_key"), ';EndpointSuffix=core.windows.net";')
    f.w("}"); f.save()

    f = F("config/database.php")
    f.w("<?php"); f.w("return ["); f.w("  'mysql' => ["); f.w("    'host' => '10.0.4.12',")
    f.w("    'password' => '", S("generic_password", SEC["generic_password"]()), "',")
    f.w("  ],"); f.w("  'mailgun_secret' => '", s("mailgun_api_key"), "',"); f.w("];"); f.save()

    f = F("lib/notifier.rb")
    f.w("require 'telegram/bot'")
    f.w("TOKEN = '", s("telegram_bot_token"), "'")
    f.w("SHOPIFY = '", s("shopify_access_token"), "'")
    f.w("PASSWORD_HASH = '$2b$12$" + rs(53, AN + "./") + "'"); f.save()

    f = F("app/src/main/kotlin/Api.kt")
    f.w("object Api {")
    f.w('    const val DATADOG_API_KEY = "', s("datadog_api_key"), '"')
    f.w('    const val DD_APP_KEY = "', s("datadog_app_key"), '"')
    f.w('    const val BUILD = "4f1c2e9"'); f.w("}"); f.save()

    f = F("scripts/deploy.sh")
    f.w("#!/bin/bash"); f.w("set -euo pipefail")
    f.w("export VAULT_TOKEN=", s("vault_token"))
    f.w("export DOPPLER_TOKEN=", s("doppler_token"))
    f.w("curl -u deploy:", S("curl_basic_password", rs(16)), " https://nexus.internal/repository/releases/")
    f.w("curl -H 'Authorization: Bearer ", s("digitalocean_token"), "' https://api.digitalocean.com/v2/droplets")
    f.w("curl -H \"Authorization: Bearer $API_TOKEN\" https://api.example.com/v1/ping"); f.save()

    # CI
    f = F(".github/workflows/release.yml")
    f.w("name: release"); f.w("on: push"); f.w("env:")
    f.w("  NPM_TOKEN: ", s("npm_token"))
    f.w("  GH_TOKEN: ${{ secrets.GH_TOKEN }}"); f.w("jobs:"); f.w("  publish:"); f.w("    runs-on: ubuntu-latest"); f.w("    steps:")
    f.w("      - uses: actions/checkout@" + hx(40))
    f.w("      - run: twine upload -u __token__ -p ", s("pypi_token"), " dist/*"); f.save()

    f = F(".gitlab-ci.yml")
    f.w("variables:"); f.w("  DATABRICKS_TOKEN: \"", s("databricks_token"), "\"")
    f.w("  SENTRY_AUTH_TOKEN: ", s("sentry_auth_token"))
    f.w("deploy:"); f.w("  script:"); f.w("    - ./deploy.sh --password changeme"); f.save()

    f = F(".circleci/config.yml")
    f.w("version: 2.1"); f.w("jobs:"); f.w("  build:"); f.w("    environment:")
    f.w("      AWS_ACCESS_KEY_ID: ", S("aws_access_key_id", aws_id()))
    f.w("      AWS_SECRET_ACCESS_KEY: ", S("aws_secret_access_key", aws_sec()))
    f.w("      DOC_KEY: AKIAIOSFODNN7EXAMPLE"); f.save()

    f = F("Jenkinsfile")
    f.w("pipeline {"); f.w("  environment {")
    f.w("    GRAFANA_TOKEN = '", s("grafana_service_account"), "'")
    f.w("    NR_KEY = '", s("new_relic_user_key"), "'")
    f.w("    REG_PASS = credentials('registry-pass')"); f.w("  }"); f.w("}"); f.save()

    # k8s
    f = F("k8s/secret.yaml")
    f.w("apiVersion: v1"); f.w("kind: Secret"); f.w("metadata:"); f.w("  name: api-secrets"); f.w("type: Opaque"); f.w("data:")
    f.w("  DATABASE_URL: ", S("k8s_secret_b64_db_url", base64.b64encode(("postgres://api:%s@pg:5432/api" % rs(20)).encode()).decode()))
    f.w("  STRIPE_KEY: ", S("k8s_secret_b64_stripe", base64.b64encode(SEC["stripe_secret_live"]().encode()).decode()))
    f.w("stringData:"); f.w("  LINEAR_API_KEY: ", s("linear_api_key")); f.save()

    f = F("helm/values-prod.yaml")
    f.w("image:"); f.w("  tag: 2.14.0"); f.w("  digest: sha256:" + hx(64))
    f.w("postgresql:"); f.w("  auth:"); f.w("    password: \"", S("generic_password", SEC["generic_password"]()), "\"")
    f.w("    existingSecret: \"\""); f.w("mongodb:")
    f.w("  uri: mongodb+srv://app:", S("mongodb_password", rs(22)), "@cluster0.ab12c.mongodb.net/prod")
    f.w("smtp:"); f.w("  password: \"<smtp-password>\""); f.save()

    f = F("home/.kube/config")
    f.w("apiVersion: v1"); f.w("clusters:"); f.w("- cluster:"); f.w("    server: https://10.20.0.1:6443"); f.w("  name: prod"); f.w("users:"); f.w("- name: admin"); f.w("  user:")
    f.w("    token: ", S("kubeconfig_token", jwt()))
    f.w("    client-key-data: ", S("kubeconfig_client_key", base64.b64encode(pem("k", "RSA PRIVATE KEY").encode()).decode())); f.save()

    # terraform/ansible/docker
    f = F("infra/main.tf")
    f.w('provider "aws" {'); f.w('  region     = "eu-central-1"')
    f.w('  access_key = "', S("aws_access_key_id", aws_id()), '"')
    f.w('  secret_key = "', S("aws_secret_access_key", aws_sec()), '"'); f.w("}")
    f.w('resource "aws_db_instance" "db" {'); f.w("  password = var.db_password"); f.w("}"); f.save()
    f = F("infra/prod.tfvars")
    f.w('db_password = "', S("generic_password", SEC["generic_password"]()), '"')
    f.w('tfe_token   = "', s("terraform_cloud_token"), '"')
    f.w('pulumi     = "', s("pulumi_token"), '"'); f.save()
    f = F("ansible/group_vars/all.yml")
    f.w("---"); f.w("smtp_host: smtp.mailgun.org"); f.w("smtp_password: ", S("smtp_password", rs(24)))
    f.w("ansible_become_pass: \"{{ vault_become_pass }}\""); f.w("postman_key: ", s("postman_api_key")); f.save()
    f = F("docker-compose.yml")
    f.w("services:"); f.w("  db:"); f.w("    image: postgres:16.2"); f.w("    environment:")
    f.w("      POSTGRES_PASSWORD: ", S("generic_password", SEC["generic_password"]()))
    f.w("  mq:"); f.w("    environment:"); f.w("      RABBITMQ_DEFAULT_PASS: ${RABBIT_PASS}"); f.save()
    f = F("Dockerfile")
    f.w("FROM python:3.12-slim@sha256:" + hx(64))
    f.w("ENV HF_TOKEN=", s("huggingface_token"))
    f.w("ARG API_KEY=xxxxxxxxxxxxxxxx"); f.save()

    # dotfiles
    f = F(".env.production")
    f.w("NODE_ENV=production")
    f.w("DATABASE_URL=postgresql://app:", S("postgres_password", rs(20)), "@db.prod.internal:5432/app")
    f.w("SECRET_KEY=", S("generic_secret_key", rs(48)))
    f.w("OPENAI_API_KEY=", s("openai_project_key"))
    f.w("TWILIO_API_KEY=", s("twilio_api_key_sid"))
    f.w("TWILIO_AUTH_TOKEN=", S("twilio_auth_token", hx(32)))
    f.w("SQUARE_TOKEN=", s("square_access_token"))
    f.w("STRIPE_PUBLISHABLE=pk_test_" + rs(24)); f.save()
    f = F(".env.example")
    f.w("OPENAI_API_KEY=sk-...your-key-here"); f.w("DATABASE_URL=postgres://user:password@localhost:5432/db"); f.w("SECRET_KEY=changeme"); f.save()
    f = F("home/.npmrc"); f.w("//registry.npmjs.org/:_authToken=", s("npm_token")); f.w("always-auth=true"); f.save()
    f = F("home/.pypirc"); f.w("[pypi]"); f.w("username = __token__"); f.w("password = ", s("pypi_token")); f.save()
    f = F("home/.netrc"); f.w("machine api.heroku.com"); f.w("  login ", AMB("role_email", "ops@acme.io")); f.w("  password ", S("netrc_password", hx(8) + "-" + hx(4) + "-" + hx(4) + "-" + hx(4) + "-" + hx(12))); f.save()
    f = F("home/.git-credentials"); f.w("https://build-bot:", s("github_oauth"), "@github.com"); f.save()
    f = F("home/.docker/config.json")
    f.w('{"auths": {"registry.acme.io": {"auth": "', S("docker_auth_b64", base64.b64encode(("ci:" + rs(20)).encode()).decode()), '"}}}'); f.save()
    f = F("home/.aws/credentials")
    f.w("[default]"); f.w("aws_access_key_id = ", S("aws_access_key_id", aws_id())); f.w("aws_secret_access_key = ", S("aws_secret_access_key", aws_sec()))
    f.w("[sts]"); f.w("aws_access_key_id = ", S("aws_sts_key_id", aws_sts())); f.w("aws_secret_access_key = ", S("aws_secret_access_key", aws_sec()))
    f.w("aws_session_token = ", S("aws_session_token", "IQoJb3JpZ2luX2Vj" + rs(300, AN + "+/"))); f.save()
    f = F("gcp/sa.json")
    sa = pem("k", "PRIVATE KEY").replace("\n", "\\n")
    f.w("{"); f.w('  "type": "service_account",'); f.w('  "project_id": "acme-data-31",'); f.w('  "private_key_id": "', S("gcp_private_key_id", hx(40)), '",')
    f.w('  "private_key": "', S("gcp_sa_private_key", sa), '\\n",')
    f.w('  "client_email": "', AMB("service_account_email", "etl@acme-data-31.iam.gserviceaccount.com"), '"'); f.w("}"); f.save()

    # app configs
    f = F("src/main/resources/application.properties")
    f.w("spring.datasource.url=jdbc:oracle:thin:@//ora.prod:1521/ORCL")
    f.w("spring.datasource.password=", S("generic_password", SEC["generic_password"]()))
    f.w("spring.mail.password=", S("smtp_password", rs(16)))
    f.w("app.version=3.2.1"); f.save()
    f = F("src/main/resources/application.yml")
    f.w("spring:"); f.w("  data:"); f.w("    mongodb:"); f.w("      uri: mongodb://reporting:", S("mongodb_password", rs(18)), "@mongo-0.internal:27017/reports")
    f.w("atlassian:"); f.w("  token: ", s("atlassian_api_token")); f.save()
    f = F("Api/appsettings.json")
    f.w("{"); f.w('  "ConnectionStrings": {')
    f.w('    "Default": "Server=sql01;Database=Orders;User Id=orders;Password=', S("adonet_password", rs(16)), ';"')
    f.w("  },"); f.w('  "Logging": { "LogLevel": { "Default": "Information" } }'); f.w("}"); f.save()
    f = F("mysite/settings.py")
    f.w("DEBUG = False")
    f.w("SECRET_KEY = '", s("django_secret_key"), "'")
    f.w("EMAIL_HOST_PASSWORD = '", S("smtp_password", rs(16)), "'")
    f.w("DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'PASSWORD': os.environ['DB_PASSWORD']}}"); f.save()
    f = F("config/credentials.yml")
    f.w("secret_key_base: ", S("rails_secret_key_base", hx(128)))
    f.w("aws:"); f.w("  access_key_id: ", S("aws_access_key_id", aws_id())); f.w("  secret_access_key: ", S("aws_secret_access_key", aws_sec())); f.save()

    # logs
    f = F("logs/app.log")
    f.w("2025-11-03T10:14:22.117Z INFO  starting worker pid=4412 version=5.4.0")
    f.w("2025-11-03T10:14:23.001Z ERROR db connect failed dsn=postgres://etl:", S("postgres_password", rs(16)), "@10.1.2.3:5432/warehouse")
    f.w("2025-11-03T10:14:25.440Z DEBUG outbound headers {'Authorization': 'Bearer ", s("openai_legacy_key"), "'}")
    f.w("2025-11-03T10:15:00.000Z INFO  user signup email=", P("email", person()[2]), " phone=", P("phone_us", phone("us")))
    f.w("2025-11-03T10:15:02.812Z WARN  order 100234567890123 retry=3 trace=" + hx(32)); f.save()
    f = F("logs/access.log")
    for i in range(4):
        f.w('10.0.%d.%d - - [03/Nov/2025:10:%02d:11 +0000] "GET /api/v1/orders?page=%d HTTP/1.1" 200 5123 "-" "Mozilla/5.0"' % (i, i + 7, i, i))
    f.w('10.0.9.9 - - [03/Nov/2025:10:22:11 +0000] "GET /hook?token=', s("github_app_server"), ' HTTP/1.1" 302 0 "-" "curl/8.4.0"')
    f.w('10.0.9.9 - - [03/Nov/2025:10:23:11 +0000] "GET /api/u?email=', P("email", person()[2]), ' HTTP/1.1" 200 12 "-" "curl/8.4.0"'); f.save()
    f = F("logs/traceback.txt")
    f.w("Traceback (most recent call last):"); f.w('  File "/app/worker.py", line 88, in run')
    f.w("sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to mssql+pyodbc://sa:", S("mssql_password", rs(18)), "@sqlsrv:1433/db failed")
    f.w("sentry_sdk init dsn=https://", AMB("sentry_dsn_public_key", hx(32)), "@o123456.ingest.sentry.io/4505"); f.save()

    # docs
    f = F("docs/runbook.md")
    f.w("# Runbook: rotating credentials"); f.w("")
    f.w("The AWS docs use `AKIAIOSFODNN7EXAMPLE` / `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`.")
    f.w("Temporary fallback admin token (remove!): `", s("github_fine_grained_pat"), "`")
    f.w("Set `GITHUB_TOKEN=<token>` and `password: ****`.")
    f.w("Escalation: on-call ", P("person_email", person()[2]), " or ", P("phone_uk", phone("uk")))
    f.w("Shared mailbox: ", AMB("role_email", "support@acme.io")); f.save()
    f = F("docs/incident-2025-10-17.md")
    f.w("## Incident INC-4821"); f.w("Root cause: key leaked in CI log:")
    f.w("```"); f.w("SLACK_USER_TOKEN=", s("slack_user_token")); f.w("```")
    f.w("Reporter: ", P("person_name_email", person()[2]), ", phone ", P("phone_de", phone("de")))
    f.w("Build 20251017.4821.3 / commit " + hx(40)); f.save()
    f = F("exports/slack-export.json")
    f.w("[")
    f.w('  {"user": "U04ABC", "ts": "1729150000.123400", "text": "here is the discord hook ', s("discord_webhook"), '"},')
    f.w('  {"user": "U04ABD", "ts": "1729150100.000200", "text": "call me at ', P("phone_fr", phone("fr")), ' or ', P("phone_e164", phone("e164")), '"},')
    f.w('  {"user": "U04ABE", "ts": "1729150200.000300", "text": "age key: ', s("age_secret_key"), '"}')
    f.w("]"); f.save()
    f = F("exports/ticket-9912.txt")
    fn, ln, em = person()
    f.w("Ticket #9912  Priority: high"); f.w("From: ", P("email", em))
    f.w("Customer SSN on file: ", P("us_ssn", ssn()))
    f.w("Card used: ", P("credit_card", spaced(card("4", 16))))
    f.w("IBAN for refund: ", P("iban", spaced(iban("DE", 18))))
    f.w("Not an SSN: 000-12-3456, 666-45-1234, 912-34-5678"); f.w("Order no: " + bad_card()); f.save()

    # CSV/JSON customer exports with many PII
    cc_specs = [("4", 16, "visa"), ("51", 16, "mastercard"), ("2221", 16, "mastercard2"), ("34", 15, "amex"), ("6011", 16, "discover"), ("3528", 16, "jcb"), ("36", 14, "diners")]
    ib_specs = [("DE", 18, string.digits), ("GB", 18, None), ("FR", 23, string.digits), ("ES", 20, string.digits), ("NL", 14, None), ("IT", 23, None), ("BE", 12, string.digits), ("CH", 17, string.digits), ("PL", 24, string.digits)]
    phones = ["us", "us2", "uk", "uk2", "de", "fr", "fr2", "br", "in", "jp", "e164"]
    for n in range(6):
        f = F("exports/customers_%02d.csv" % n)
        f.w("id,first_name,last_name,email,phone,card,iban,created_at")
        for r in range(6):
            fn_, ln_, em = person()
            pk = phones[(n * 6 + r) % len(phones)]
            pre, ln_c, nm = cc_specs[(n + r) % len(cc_specs)]
            c = card(pre, ln_c)
            c = [c, spaced(c), "-".join(c[i:i + 4] for i in range(0, len(c), 4))][r % 3]
            cc_, bl, chars = ib_specs[(n * 3 + r) % len(ib_specs)]
            if cc_ == "GB":
                ib = "GB%s" % ""
                ib = iban("GB", 18, string.digits) if False else None
                bban = rs(4, string.ascii_uppercase) + rs(14, string.digits)
                num = "".join(str(int(ch, 36)) for ch in bban + "GB00")
                ib = "GB%02d" % (98 - int(num) % 97) + bban
            elif cc_ == "NL":
                bban = rs(4, string.ascii_uppercase) + rs(10, string.digits)
                num = "".join(str(int(ch, 36)) for ch in bban + "NL00")
                ib = "NL%02d" % (98 - int(num) % 97) + bban
            elif cc_ == "IT":
                bban = R.choice(string.ascii_uppercase) + rs(22, string.digits)
                num = "".join(str(int(ch, 36)) for ch in bban + "IT00")
                ib = "IT%02d" % (98 - int(num) % 97) + bban
            else:
                ib = iban(cc_, bl, chars)
            if r % 2:
                ib = spaced(ib)
            f.w("%d,%s,%s," % (1000 + n * 10 + r, fn_, ln_), P("email", em), ",", P("phone_" + pk, phone(pk)), ",",
                P("credit_card_" + nm, c), ",", P("iban_" + cc_, ib), ",2025-0%d-1%dT08:00:00Z" % (r + 1, r))
        f.w("9999,Test,User,test@example.com,555-0100,4111 1111 1111 1112,DE00123456780000000000,2025-01-01T00:00:00Z")
        f.save()
    f = F("exports/hr_records.json")
    f.w("[")
    for r in range(8):
        fn_, ln_, em = person()
        f.w('  {"name": "%s %s", "email": "' % (fn_, ln_), P("email", em), '", "ssn": "', P("us_ssn", ssn()), '", "employee_id": "E%05d", "hired": "2019-0%d-02"},' % (R.randint(1, 99999), r + 1))
    f.w('  {"name": "Placeholder", "email": "nobody@example.com", "ssn": "123-00-4567", "employee_id": "E00000"}'); f.w("]"); f.save()

    # chat-completion bodies
    for n, shape in enumerate(["openai", "anthropic", "gemini", "openai", "anthropic"]):
        k1 = ["stripe_restricted_live", "github_user_to_server", "openai_project_key", "slack_bot_token", "sendgrid_api_key"][n]
        v1 = SEC[k1]()
        pk = pem("k", "RSA PRIVATE KEY")
        pw = rs(16)
        fn_, ln_, em = person()
        cont = ("Why does this fail?\n```\nexport API_KEY=%s\nconn = 'postgres://svc:%s@db:5432/x'\n```\nkey:\n%s\ncontact %s \\u00e9t\\u00e9" % ("@@1", "@@2", "@@3", "@@4"))
        js = json.dumps(cont)[1:-1]
        f = F("prompts/%s_request_%d.json" % (shape, n))
        a, rest = js.split("@@1"); b, rest = rest.split("@@2"); c, rest = rest.split("@@3"); d, e = rest.split("@@4")
        pre = {"openai": '{"model": "gpt-4o", "messages": [{"role": "user", "content": "',
               "anthropic": '{"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "',
               "gemini": '{"contents": [{"role": "user", "parts": [{"text": "'}[shape]
        post = {"openai": '"}]}', "anthropic": '"}]}', "gemini": '"}]}]}'}[shape]
        f.w(pre + a, S(k1, v1), b, S("postgres_password", pw), c, S("rsa_private_key", pk.replace("\n", "\\n")), d, P("email", em), e + post)
        f.save()

    # shell history, sql, notebook, har
    f = F("home/.bash_history")
    f.w("ls -la"); f.w("git log --oneline | head")
    f.w("export GITHUB_TOKEN=", s("github_pat_classic"))
    f.w("mysql -u root -p", S("mysql_cli_password", rs(14)), " -h 10.0.0.5 shop")
    f.w("psql 'postgresql://readonly:", S("postgres_password", rs(16)), "@analytics:5432/events'")
    f.w("redis-cli -a ", S("redis_password", rs(20)), " -h cache-1")
    f.w("docker login -u ci -p ", S("docker_password", rs(20)), " registry.acme.io")
    f.w("echo $AWS_SECRET_ACCESS_KEY"); f.save()
    f = F("db/dump.sql")
    f.w("CREATE TABLE users (id int, name text, email text, phone text, password_hash text);")
    for r in range(5):
        fn_, ln_, em = person()
        pk = ["us", "br", "in", "jp", "uk"][r]
        f.w("INSERT INTO users VALUES (%d,'%s %s','" % (r + 1, fn_, ln_), P("email", em), "','", P("phone_" + pk, phone(pk)),
            "','$argon2id$v=19$m=65536,t=3,p=4$" + rs(22, AN + "+/") + "$" + rs(43, AN + "+/") + "');")
    f.w("-- settings"); f.w("INSERT INTO settings VALUES ('smtp_password','", S("smtp_password", rs(18)), "');"); f.save()
    f = F("notebooks/analysis.ipynb")
    nb_key = SEC["openai_project_key"]()
    f.w("{"); f.w(' "cells": [');
    f.w('  {"cell_type": "code", "source": ["import openai\\n", "openai.api_key = \\"', S("openai_project_key", nb_key), '\\"\\n"], "outputs": [], "metadata": {}},')
    f.w('  {"cell_type": "code", "source": ["df.head()"], "outputs": [{"text": ["0  ', P("email", person()[2]), '  ', P("phone_in", phone("in")), '\\n"]}], "metadata": {}}')
    f.w(' ],'); f.w(' "nbformat": 4, "nbformat_minor": 5'); f.w("}"); f.save()
    f = F("captures/session.har")
    basic = base64.b64encode(("admin:" + rs(14)).encode()).decode()
    f.w('{"log": {"entries": [')
    f.w('  {"request": {"method": "GET", "url": "https://api.acme.io/v2/me", "headers": [{"name": "Authorization", "value": "Bearer ', s("jwt"), '"}]}},')
    f.w('  {"request": {"method": "POST", "url": "https://jenkins.acme.io/job/x/build", "headers": [{"name": "Authorization", "value": "Basic ', S("basic_auth", basic), '"}]}},')
    f.w('  {"request": {"method": "GET", "url": "https://cdn.acme.io/app.js", "headers": [{"name": "If-None-Match", "value": "W/\\"' + hx(32) + '\\""}]}}')
    f.w("]}}"); f.save()

    # lockfile negatives / misc negatives
    f = F("web/package-lock.json")
    f.w('{"packages": {"node_modules/lodash": {"version": "4.17.21", "integrity": "sha512-' + base64.b64encode(bytes(R.getrandbits(8) for _ in range(64))).decode() + '"}}}'); f.save()
    f = F("docs/api-examples.md")
    f.w("# API examples"); f.w("```"); f.w("curl -H 'Authorization: Bearer YOUR_API_KEY' https://api.example.com")
    f.w("stripe.api_key = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'"); f.w("OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxx")
    f.w("ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"); f.w("Phone: ", AMB("fictional_555_01xx_phone", "+1 555-0123"), ", build 1.2.3.4567, 0x7fff5fbff8a8")
    f.w("IBAN ", AMB("doc_example_iban", "DE89 3704 0044 0532 0130 01"), " is the doc example; DE12 3456 7890 1234 5678 90 is invalid"); f.w("```")
    f.w("Example token: ", AMB("unsigned_jwt", b64u(b'{"alg":"none"}') + "." + b64u(b'{"sub":"123"}') + "."))
    f.save()

    # per-service env files and deploy manifests (more secret kinds in context)
    envkeys = [("GITHUB_TOKEN", "github_pat_classic"), ("STRIPE_SECRET_KEY", "stripe_secret_live"), ("SLACK_BOT_TOKEN", "slack_bot_token"),
               ("ANTHROPIC_API_KEY", "anthropic_api_key"), ("GOOGLE_API_KEY", "google_api_key"), ("SENDGRID_API_KEY", "sendgrid_api_key"),
               ("GITLAB_TOKEN", "gitlab_pat"), ("HUGGING_FACE_HUB_TOKEN", "huggingface_token"), ("DD_API_KEY", "datadog_api_key"),
               ("NPM_TOKEN", "npm_token"), ("VAULT_TOKEN", "vault_token"), ("SHOPIFY_TOKEN", "shopify_access_token"),
               ("TELEGRAM_BOT_TOKEN", "telegram_bot_token"), ("MAILGUN_API_KEY", "mailgun_api_key"), ("DO_TOKEN", "digitalocean_token"),
               ("OPENAI_API_KEY", "openai_project_key"), ("JWT_SIGNING_SECRET", "generic_api_key"), ("API_KEY", "generic_api_key"),
               ("SENTRY_AUTH_TOKEN", "sentry_auth_token"), ("LINEAR_API_KEY", "linear_api_key")]
    for n, svc in enumerate(["billing", "search", "notifier"]):
        f = F("services/%s/.env" % svc)
        f.w("# %s service" % svc); f.w("PORT=80%d0" % n); f.w("LOG_LEVEL=info")
        for i in range(12):
            name, kind = envkeys[(n * 7 + i) % len(envkeys)]
            f.w(name + "=", s(kind))
        f.w("FEATURE_FLAGS=beta,new-ui"); f.w("RELEASE=" + hx(40)); f.save()

    LABELS.sort(key=lambda l: (l["file"], l["start"]))
    with open(os.path.join(HERE, "labels.json"), "w") as fh:
        json.dump(LABELS, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    build()
    c = {}
    for l in LABELS:
        c[l["category"]] = c.get(l["category"], 0) + 1
    print(c, "secret kinds:", len({l["kind"] for l in LABELS if l["category"] == "secret"}))
