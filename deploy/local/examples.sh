#!/bin/sh
# Prints example calls against the server started by `make run`.
# Usage: examples.sh TOKENS_FILE HTTP_ADDR GRPC_ADDR
tokens_file=$1
http=${2:-127.0.0.1:8080}
grpc=${3:-127.0.0.1:9090}
token=$(awk '$2=="admin"{print $1; exit}' "$tokens_file")
cat <<TXT

==============================================================================
 promo-server is starting on grpc://$grpc and http://$http
 (Ctrl-C stops it). Admin token (from $tokens_file): $token

 REST:
   curl -s http://$http/readyz
   curl -s -X POST http://$http/v1/score -d '{"userId":"u12","explain":true}'
   curl -s -X POST http://$http/v1/recommend -d '{"userId":"u12","k":5,"sessionItemIds":["i5"]}'
   curl -s http://$http/v1/items/i5/similar?k=5
   curl -s -X POST http://$http/v1/offers -d '{"userId":"u0","cart":{"lines":[{"itemId":"i7","quantity":1,"unitPrice":30}]}}'
   curl -s http://$http/v1/models
   curl -s http://$http/v1/status
   curl -s -X POST http://$http/v1/events:ingest -H "Authorization: Bearer $token" \\
        -d '{"events":[{"eventId":"demo-1","type":"EVENT_TYPE_VIEW","time":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","userId":"u12","itemId":"i5"}]}'
   curl -s http://$http/openapi.json | head -c 300

 gRPC (server reflection is on; grpcurl: go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3):
   grpcurl -plaintext -d '{"user_id":"u12","explain":true}' $grpc promo.v1.ScoringService/Score
   grpcurl -plaintext -d '{"user_id":"u12","k":5}' $grpc promo.v1.RecommendationService/Recommend
   grpcurl -plaintext -d '{"service":"promo.v1.ScoringService"}' $grpc grpc.health.v1.Health/Check

 Registry CLI (promote / roll back / history):
   go run ./registry/cmd/promoctl -store.dir var/registry models
   go run ./registry/cmd/promoctl -store.dir var/registry history recommender
==============================================================================

TXT
