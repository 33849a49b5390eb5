// Package config is the pipeline's configuration: every setting comes from an
// environment variable, is parsed once in main with caarlos0/env, and is
// validated with every problem reported at once, each naming its variable
// once. Nothing below main reads the environment.
//
// The configuration comes in parts (Database, Kafka, Topics, Records,
// Dashboard, NATS, Cast, Log), each with its variables, defaults and checks.
// A Lambda function's main composes the parts it needs into a struct of its
// own and loads it with Load; the local harness loads Config, every part.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is the whole configuration of the local harness: every part.
type Config struct {
	Database  Database
	Kafka     Kafka
	Topics    Topics
	Records   Records
	Dashboard Dashboard
	NATS      NATS
	Tokens    Tokens
	Cast      Cast
	Log       Log
}

// Role says where the configuration runs, which changes what is required.
type Role int

const (
	// Local is the harness on one machine: an empty KAFKA_BROKERS means the
	// embedded broker.
	Local Role = iota
	// Lambda is a deployed function: brokers must be named.
	Lambda
)

// Problem is one thing wrong with the configuration, naming its variable.
type Problem struct {
	Var string
	Msg string
}

func (p Problem) Error() string { return p.Var + ": " + p.Msg }

// Validator is a part of a configuration that checks its own values.
type Validator interface {
	Validate(role Role) []Problem
}

// Error lists every configuration problem found.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = "  - " + p.Error()
	}
	return fmt.Sprintf("invalid configuration (%d problem(s)):\n%s", len(e.Problems), strings.Join(msgs, "\n"))
}

// Unwrap returns the individual problems.
func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// Load parses T from the process environment and validates it for role. T
// is a struct whose fields (named or embedded) are configuration parts:
// structs of env-tagged fields, checked by their Validate method when they
// have one. Every problem is reported at once; a variable that cannot be
// parsed is named once, with what it should look like, and its part's
// checks of it are skipped.
func Load[T any](role Role) (T, error) {
	return LoadFrom[T](nil, role)
}

// LoadFrom is Load over an explicit environment (nil: the process's own).
func LoadFrom[T any](environ map[string]string, role Role) (T, error) {
	var cfg T
	if environ == nil {
		environ = env.ToMap(os.Environ())
	}
	opts := env.Options{Environment: environ}
	v := reflect.ValueOf(&cfg).Elem()
	if v.Kind() != reflect.Struct {
		panic("config.Load: T must be a struct of configuration parts")
	}
	var problems []Problem
	for i := range v.NumField() {
		part := v.Field(i)
		if part.Kind() != reflect.Struct || !v.Type().Field(i).IsExported() {
			continue
		}
		failed := map[string]bool{}
		if err := env.ParseWithOptions(part.Addr().Interface(), opts); err != nil {
			for _, p := range parseProblems(err, part.Type(), environ) {
				failed[p.Var] = true
				problems = append(problems, p)
			}
		}
		if val, ok := part.Addr().Interface().(Validator); ok {
			for _, p := range val.Validate(role) {
				if !failed[p.Var] {
					problems = append(problems, p)
				}
			}
		}
	}
	if len(problems) > 0 {
		return cfg, &Error{Problems: problems}
	}
	return cfg, nil
}

// parseProblems turns caarlos0/env's errors into problems naming the
// variable (its errors name the Go field).
func parseProblems(err error, part reflect.Type, environ map[string]string) []Problem {
	var errs []error
	var agg env.AggregateError
	if errors.As(err, &agg) {
		errs = agg.Errors
	} else {
		errs = []error{err}
	}
	var out []Problem
	for _, e := range errs {
		var pe env.ParseError
		if errors.As(e, &pe) {
			key := envKey(part, pe.Name)
			out = append(out, Problem{Var: key, Msg: fmt.Sprintf("%q is not %s", environ[key], describe(pe.Type))})
			continue
		}
		out = append(out, Problem{Var: "environment", Msg: e.Error()})
	}
	return out
}

// envKey returns the variable of the field named name in part (field names
// are unique within a part; see the tests).
func envKey(part reflect.Type, name string) string {
	for i := range part.NumField() {
		f := part.Field(i)
		if f.Name == name {
			if k, _, _ := strings.Cut(f.Tag.Get("env"), ","); k != "" {
				return k
			}
		}
		if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
			if k := envKey(f.Type, name); k != name {
				return k
			}
		}
	}
	return name
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	levelType    = reflect.TypeFor[slog.Level]()
)

// describe says what a value of type t looks like.
func describe(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 250ms, 5s or 168h"
	case t == levelType:
		return "a log level: debug, info, warn or error"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a comma-separated list of " + strings.TrimPrefix(describe(t.Elem()), "a ")
	}
	return "a valid " + t.String()
}

// problems collects a part's problems.
type problems []Problem

func (ps *problems) add(variable, format string, args ...any) {
	*ps = append(*ps, Problem{Var: variable, Msg: fmt.Sprintf(format, args...)})
}

// Names returns the variables of T's parts, sorted (for documentation and
// tests).
func Names[T any]() []string {
	var names []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if k, _, _ := strings.Cut(f.Tag.Get("env"), ","); k != "" {
				names = append(names, k)
			} else if f.Type.Kind() == reflect.Struct {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[T]())
	slices.Sort(names)
	return slices.Compact(names)
}
