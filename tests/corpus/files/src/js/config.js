module.exports = {
  port: process.env.PORT || 3000,
  mongoUri: "mongodb+srv://appuser:SzQ0pk7LUoxPLT@cluster0.x7k2p.mongodb.net/shop?retryWrites=true&w=majority",
  redisUrl: "redis://localhost:6379/0",
  jwtSecret: process.env.JWT_SECRET,
  stripe: {
    secretKey: "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",
    publishableKey: "pk_live_MDzTE29b66qhyXgJ1d2QDfHTf3rJnd6PMENWfVl6VoO79ikixVETXtRiNpnNeVJNYtOnbV0ynqJtvcA9Je0GbaDNnXgpYKfX6YJ",
  },
  sentryDsn: "https://cbd38cfbe2c84753145eea8b94da8355@o600565.ingest.sentry.io/1547111",
  buildId: "2a375cc1a68a62c33cf056c7bab8184e4ccb9562",
};
