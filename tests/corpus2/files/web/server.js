const { WebClient } = require('@slack/web-api');
const slack = new WebClient('xoxb-109926711505-5301497362675-tsEaJBGc45trFMY0on5L5pN8');
const webhook = 'https://hooks.slack.com/services/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';
const redis = createClient({ url: 'redis://:vdrpKSu3fAtY5AUyMlG6SFlL@cache.internal:6379/0' });
const logo = 'data:image/png;base64,ln1QgrO6gZIcyjPEN8NjYsZQMTtETK8i6cVjImiGjpXwdvoxGaHoo/Q9M+GEYI43aOEuwaE+nYDkywHyM6J4m5dJ5E9+c7Axp0Gd+y1zso04Ekh4ZEK1Ia2Ve/vthPaEifyojyX28yZ8IgTUd19dADyFi+IQbsPB';
