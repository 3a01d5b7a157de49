#!/bin/sh
# Fill these in from 1Password before running
export OPENAI_API_KEY="sk-..."
export GITHUB_TOKEN=<your-token>
export DB_PASSWORD=changeme
export API_KEY=xxxxxxxxxxxxxxxxxxxxxxxx
export SECRET_KEY=${SECRET_KEY}
docker run -e POSTGRES_PASSWORD=postgres -p 5432:5432 postgres:16
echo "image digest sha256:950be540c6ecf4577d4989bf8798b79ed51efa755bc43dd208d60d0b7a32cdb8"
