// Package cluster will wire boxoffice across several nodes: protoactor
// cluster membership places each event actor on one node, and the journal
// moves to a replicated engine behind actors.Journal, whose expected-sequence
// Append fences out a stale owner. It holds no code yet: single-node mode
// needs none.
package cluster
