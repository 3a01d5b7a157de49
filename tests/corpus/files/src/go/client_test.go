package client

import "testing"

func TestParse(t *testing.T) {
	cases := []string{
		"AKIAIOSFODNN7EXAMPLE",
		"sk_test_mxmeOKBv8qIXPn71B4FyJodD",
		"c2f1a0c4-26cc-4a8a-9646-ae66be4d1d6e",
	}
	for _, c := range cases {
		if _, err := Parse(c); err != nil {
			t.Fatal(err)
		}
	}
	digest := "sha256:64a71387b1bec63faf719f10cbbf5fb040bba5817b977fd5b42df8091174f6c4"
	_ = digest
}
