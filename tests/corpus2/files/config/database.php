<?php
return [
  'mysql' => [
    'host' => '10.0.4.12',
    'password' => 'OU83LIuEOp!JTqojCxh',
  ],
  'mailgun_secret' => 'key-433a3cbecd8465c047cb9d26798ceed3',
];
