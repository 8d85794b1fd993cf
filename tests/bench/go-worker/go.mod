module local.invalid/hatchet-bench-go-worker

go 1.26

require github.com/hatchet-dev/hatchet v0.104.7
