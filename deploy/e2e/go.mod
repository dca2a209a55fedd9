module redis-session-app/deploy/e2e

go 1.26.0
