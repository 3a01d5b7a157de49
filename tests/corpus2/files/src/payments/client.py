import os, stripe

stripe.api_key = "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"
TEST_KEY = "sk_test_u3fFpwv9WlPFng049WGwSXU7"  # unit tests only
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "YOUR_API_KEY")
anthropic_key = "sk-ant-api03-SQY6j21XeqXiRNz5ivAHLXQTiFLFjd2145PeStAkbPrXT7iuoDXw7-CYMsMl71mTZ29S2mOsgG8yJqS-oZKtU1hXDAM7MAA"
COMMIT = "97ea3a5cae86c3a7c200b1a3398d38e2cdca980f"
REQUEST_ID = "0981e142-19f8-4e2f-aeab-01e386a4a0d8"
def charge(customer_email="jane.doe@example.com"):
    return None
