CREATE TABLE users (id int, name text, email text, phone text, password_hash text);
INSERT INTO users VALUES (1,'Chiara Iyer','chiara.iyer20@proton.me','(663) 499-2914','$argon2id$v=19$m=65536,t=3,p=4$C08E7dWWnMMCzV50iIIIgd$3PHEMILMga6u7kmYzKx8k2guSLKOUz+UPHxrYTEvRhp');
INSERT INTO users VALUES (2,'Sanne Novak','sanne.novak33@outlook.de','+55 11 94092-3064','$argon2id$v=19$m=65536,t=3,p=4$f/2ZW8NN+DXuhIwAXWCI4k$MsEIqaF53OND139LUbLM/+MWUioGXxd4ja3M7+wJXeY');
INSERT INTO users VALUES (3,'Sanne Haddad','sanne.haddad94@proton.me','+91 90166 68519','$argon2id$v=19$m=65536,t=3,p=4$vHzBN0QJXfNAs5ezNr+qKw$1ENDw/+IljsW16NjOqX3coJWTCK3ZQLPBmUlBmGYARv');
INSERT INTO users VALUES (4,'Yusuf Iyer','yusuf.iyer74@outlook.de','+81 90-8594-8639','$argon2id$v=19$m=65536,t=3,p=4$HYNIKGDwshFATSRjrHGN2v$ai8rei3KTxa/XTlN2bePjttgVQTL5Q5qUQOvm8KtW6D');
INSERT INTO users VALUES (5,'Chiara Kowalczyk','chiara.kowalczyk31@outlook.de','+44 7361 310367','$argon2id$v=19$m=65536,t=3,p=4$egGU1qWC+ldM+1W0dh/RuN$3dCJfC3rQtmNsQWSP5YGG/7BDVWIY76+SRFKwOct1/2');
-- settings
INSERT INTO settings VALUES ('smtp_password','L7KrwvHEX4c4xpt7Oq');
