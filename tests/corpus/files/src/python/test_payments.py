import pytest
from payments import charge

STRIPE_KEY = "sk_test_ACN26CdbBYy7PIeCZ80X5Uwh"
TEST_CARD = "4242424242424242"  # Stripe documented test card
DECLINED = "4000000000000002"


@pytest.mark.parametrize("amount", [100, 2500, 99999])
def test_charge(amount):
    res = charge(STRIPE_KEY, TEST_CARD, amount, idempotency_key="86b353bb-0579-4910-9270-eb5a65c72e29")
    assert res.status == "succeeded"
    assert res.id.startswith("ch_")


def test_password_field_masked():
    user = {"email": "jane.doe@example.com", "password": "********"}
    assert "password" in user


def test_api_key_placeholder():
    assert load_key("YOUR_API_KEY") is None
    assert load_key("<token>") is None
    assert load_key("${API_KEY}") is None
