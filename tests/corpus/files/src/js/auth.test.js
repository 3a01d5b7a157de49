const jwt = require("jsonwebtoken");

describe("auth", () => {
  it("rejects an expired token", () => {
    // header.payload only, signature stripped: not a usable token
    const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0";
    expect(() => jwt.verify(token, "test-secret")).toThrow();
  });
  it("uses the session token from the fixture", () => {
    const session = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyXzcyMzM0OSIsImlhdCI6MTc2Mzk0NDgxMywiZXhwIjoxNzY0MDI5MzIwLCJlbWFpbCI6InN2Y0BpbnRlcm5hbCJ9.-QMm77SqUXAc43myMO7EUd3vy84Q2LqRuebX-t6s_CQ";
    expect(session.split(".")).toHaveLength(3);
  });
  it("formats a phone", () => {
    expect(format("2025550147")).toBe("(202) 555-0147");
  });
});
