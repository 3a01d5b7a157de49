require 'telegram/bot'
TOKEN = '1865946192:AA5BZuvrK2vIdVO0YFcsljgXdshYcAa7bbH'
SHOPIFY = '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'
PASSWORD_HASH = '$2b$12$lgQc4wWnbHSKQsVAqp1vuBLZbOO55v9R4Ou4HMBxtMd/n6Kmx9IrN'
