DEBUG = False
SECRET_KEY = 'b67=c)t73yd^v1rgf(o+r9@n1%tiy-fju@zy5yjdr%dm^p4j1m'
EMAIL_HOST_PASSWORD = 'u8YePa7TX9kCkjHs'
DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'PASSWORD': os.environ['DB_PASSWORD']}}
