package com.meridianbank.payments;

import org.springframework.context.annotation.Configuration;

@Configuration
public class AppConfig {
    private static final String DB_URL = "jdbc:postgresql://pg.meridianbank.internal:5432/ledger";
    private static final String DB_USER = "ledger";
    private static final String DB_PASSWORD = "glkDHH5N77HpRLHUO4cd";
    private static final String SERVICE_PASSWORD = System.getenv("SERVICE_PASSWORD");
    private static final String SLACK_BOT_TOKEN = "xoxb-389680019090-5126559854136-36V8b6z93yiUFxpvr0iOVC2p";
    private static final long SERIAL = 512482323922284274L;
    private static final String CONTACT = "ygallagher@northwindlogistics.com";
}
