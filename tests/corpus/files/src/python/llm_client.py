import anthropic
import openai
import os

# local dev only
openai.api_key = "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"
client = anthropic.Anthropic(api_key="sk-ant-api03-bTVgx8cInTXxKzwi7GaYiUWmuFbU2Jn4kbE1bdGmhXhKT2nUMgdBNEU7z-gYMLOp8m9TjcwIg5gPoUy0lBZF7b1qg41V9AA")
prod_client = anthropic.Anthropic(api_key=os.environ.get("ANTHROPIC_API_KEY"))
HF_TOKEN = "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"
PLACEHOLDER = "sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
EXAMPLE_OPENAI = "sk-proj-YOUR_KEY_HERE"

def summarize(text):
    return client.messages.create(model="claude-sonnet-4-5", max_tokens=512,
                                  messages=[{"role": "user", "content": text}])
