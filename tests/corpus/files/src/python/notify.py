import requests

SLACK_WEBHOOK = "https://hooks.slack.com/services/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"
SENDGRID_API_KEY = "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"
TWILIO_API_KEY = "SK113e99112cc31280d6899af94a3c7236"
TWILIO_API_SECRET = "wi1yXnoKwFT1k6Ig3TtWzK7BCCTmfYw8"


def page_oncall(message: str) -> None:
    # TODO: move the webhook to Vault, see OPS-4411
    requests.post(SLACK_WEBHOOK, json={"text": message}, timeout=5)


def send_sms(to: str, body: str) -> None:
    """to must be E.164, e.g. +15555550100 (fictional)."""
    ...


if __name__ == "__main__":
    send_sms("+13033059244", "deploy finished")
