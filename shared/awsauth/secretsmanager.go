package awsauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/votingpipe/voting/shared/config"
)

// SecretsManager reads secrets with the Secrets Manager API's
// GetSecretValue: one JSON POST signed with Signature Version 4 by the AWS
// SDK's signer. The SDK's generated client does the same with about 3 MB
// more in every function's binary, which must stay under 15 MB.
type SecretsManager struct {
	AWS config.AWS
	// Endpoint overrides https://secretsmanager.<region>.amazonaws.com
	// (tests, VPC endpoints with a custom name).
	Endpoint string
	// Client makes the requests (default: a client with a 10 s timeout).
	Client *http.Client
}

// SecretString returns the SecretString of the secret arn. Errors name the
// secret and AWS's error code, never a secret's value.
func (m *SecretsManager) SecretString(ctx context.Context, arn string) (string, error) {
	region := m.AWS.Region
	if parts := strings.Split(arn, ":"); len(parts) > 3 && parts[3] != "" {
		region = parts[3] // the secret's own region
	}
	endpoint := m.Endpoint
	if endpoint == "" {
		endpoint = "https://secretsmanager." + region + ".amazonaws.com"
	}
	body, _ := json.Marshal(map[string]string{"SecretId": arn})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	sum := sha256.Sum256(body)
	creds, err := Credentials(m.AWS).Retrieve(ctx)
	if err != nil {
		return "", err
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "secretsmanager", region, time.Now()); err != nil {
		return "", fmt.Errorf("sign the request for secret %s: %w", arn, err)
	}
	client := m.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", arn, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", arn, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		json.Unmarshal(out, &e) //nolint:errcheck // the status says enough when the body is not JSON
		code := e.Type[strings.LastIndexByte(e.Type, '#')+1:]
		return "", fmt.Errorf("read secret %s: %s (HTTP %d): %s", arn, code, resp.StatusCode, e.Message)
	}
	var v struct {
		SecretString *string `json:"SecretString"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return "", fmt.Errorf("read secret %s: the answer is not JSON", arn)
	}
	if v.SecretString == nil {
		return "", fmt.Errorf("secret %s has no SecretString (binary secrets are not supported)", arn)
	}
	return *v.SecretString, nil
}
