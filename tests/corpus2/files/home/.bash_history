ls -la
git log --oneline | head
export GITHUB_TOKEN=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
mysql -u root -pE4h9CdRnLrQHFn -h 10.0.0.5 shop
psql 'postgresql://readonly:OEjrYOUMHsk2Ymr3@analytics:5432/events'
redis-cli -a BQYe0J9dn7y2rF7pfL8l -h cache-1
docker login -u ci -p klql9f984M8T4zIbtO5Z registry.acme.io
echo $AWS_SECRET_ACCESS_KEY
