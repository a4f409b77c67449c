package adapter_test

import (
	"context"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/socketio"
)

// One node of a cluster: the Redis broker carries emits between the nodes,
// Redis presence counts each user once across them. Every node gets the
// same Redis, mode and prefix; CheckCluster at start refuses to run beside
// live nodes of another mode.
func ExampleNewRedisBroker() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"}) // or NewClusterClient, NewFailoverClient
	defer rdb.Close()                                              // yours: herald never closes it

	broker, err := adapter.NewRedisBroker(adapter.RedisBrokerConfig{
		Client: rdb,
		Mode:   adapter.RedisStreams, // or RedisPubSub (the default), RedisSharded
	})
	if err != nil {
		log.Fatal(err)
	}
	presence, err := adapter.NewRedisPresence(adapter.RedisPresenceConfig{Client: rdb})
	if err != nil {
		log.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.Config{
		Keys: []auth.Key{{Algorithm: "HS256", Secret: []byte("the-cluster's-shared-secret!!!!!")}},
	})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := socketio.New(socketio.Config{
		Verifier: verifier,
		Broker:   broker,
		Presence: presence,
		Recovery: 2 * time.Minute, // streams mode: clients resume on any node
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := broker.CheckCluster(ctx); err != nil {
		log.Fatal(err) // adapter.ErrModeMismatch: another mode beside live nodes
	}

	// ... mount srv, serve; on shutdown, in this order:
	_ = srv.Shutdown(ctx)
	_ = presence.Close(ctx)
	_ = broker.Close(ctx)
}
