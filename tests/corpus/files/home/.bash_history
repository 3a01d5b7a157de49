ls -la
cd ~/src/ledger
git log --oneline -5
export GITHUB_TOKEN=ghp_F8HY90Vv3066h6oKTvAIQvmaJJ1o6Y0UPwYH
gh repo clone meridianbank/ledger
mysql -u root -pQ0EbLhUe9VZw8m -h 127.0.0.1 core
curl -H "Authorization: Bearer glpat-75l8s9Mc1-V1Ld10POMY" https://gitlab.com/api/v4/projects
curl -u admin:MVyOoRE061Bo https://jenkins.meridianbank.internal/job/deploy/build
docker login -u harborview -p dckr_pat_i8hHtIgCCb62eLRmW7NBga2desX
psql "postgresql://postgres:postgres@localhost:5432/postgres"
aws s3 ls s3://meridian-backups --profile prod
kubectl get pods -n payments
history | grep token
echo $DB_PASSWORD
sha256sum release.tar.gz
