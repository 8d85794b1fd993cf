// The Go SDK's side of tests/bench: a worker that registers the bench's three tasks
// (no-op, 10 ms sleep, 20 s sleep) under workflow names starting with -prefix, using only
// the SDK's public API, and serves them until SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	hatchet "github.com/hatchet-dev/hatchet/sdks/go"
)

type empty struct{}

// sleepFor returns a task that sleeps d unless the run is cancelled first.
func sleepFor(d time.Duration) func(hatchet.Context, empty) (empty, error) {
	return func(ctx hatchet.Context, _ empty) (empty, error) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
		return empty{}, nil
	}
}

func main() {
	prefix := flag.String("prefix", "bench-go", "workflow name prefix")
	name := flag.String("name", "bench-go", "worker name")
	slots := flag.Int("slots", 100, "slots for the bench's (non-durable) tasks")
	flag.Parse()

	client, err := hatchet.NewClient()
	if err != nil {
		log.Fatalf("hatchet client: %v", err)
	}
	timeout := hatchet.WithExecutionTimeout(time.Minute)
	var workflows []hatchet.WorkflowBase
	for _, t := range []struct {
		name string
		fn   func(hatchet.Context, empty) (empty, error)
	}{
		{"noop", func(hatchet.Context, empty) (empty, error) { return empty{}, nil }},
		{"sleep10ms", sleepFor(10 * time.Millisecond)},
		{"sleep20s", sleepFor(20 * time.Second)},
	} {
		wf := client.NewWorkflow(*prefix + "-" + t.name)
		wf.NewTask("run", t.fn, timeout)
		workflows = append(workflows, wf)
	}
	worker, err := client.NewWorker(*name, hatchet.WithWorkflows(workflows...), hatchet.WithSlots(*slots))
	if err != nil {
		log.Fatalf("hatchet worker: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := worker.StartBlocking(ctx); err != nil {
		log.Fatalf("worker: %v", err)
	}
}
