module redis-session-app/deploy/e2e

go 1.27.0

toolchain go1.27.3
