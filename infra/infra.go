// Package infra holds the deploy-side artefacts of the pipeline: the ordered
// SQL migrations (embedded here so every function applies the same schema) and,
// beside them, the CloudFormation and setup notes for AWS.
package infra

import "embed"

// Migrations holds migrations/NNNN_name.sql, applied in file-name order by
// the store package and recorded in schema_migrations. Released files are
// never edited; a change is a new file.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Reset drops every object the migrations create (go run ./local reset).
//
//go:embed reset.sql
var Reset string
