package com.acme;
public final class Config {
    static final String JDBC = "jdbc:postgresql://pg.prod:5432/ledger?user=ledger&password=LLhYKRzyUijxTtzR";
    static final String SENDGRID = "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";
    static final String PLACEHOLDER = "${DB_PASSWORD}";
}
