package invoke

import (
	"context"
	"fmt"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// LambdaClient is what AWSInvoker needs of the AWS SDK's Lambda client.
type LambdaClient interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

var _ LambdaClient = (*lambda.Client)(nil)

// AWSInvoker invokes a function deployed in AWS Lambda by name, with the
// AWS SDK (RequestResponse, signed with the default credential chain).
type AWSInvoker struct {
	Client LambdaClient
	// Function names the function in errors; FunctionName is its name (or
	// ARN) in Lambda.
	Function     string
	FunctionName string
}

// Invoke invokes the function; an API error or a function error is an error.
func (a *AWSInvoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	out, err := a.Client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   &a.FunctionName,
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        payload,
	})
	if err != nil {
		return nil, fmt.Errorf("invoke %s (%s): %w", a.Function, a.FunctionName, err)
	}
	header := ""
	if out.FunctionError != nil {
		header = *out.FunctionError
	}
	if err := functionError(a.Function, header, out.Payload); err != nil {
		return nil, err
	}
	return out.Payload, nil
}

type awsLambda struct{ client *lambda.Client }

func newAWSLambda(ctx context.Context) (*awsLambda, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration for --invoke-aws: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("--invoke-aws: no AWS region (set AWS_REGION or a profile's region)")
	}
	return &awsLambda{client: lambda.NewFromConfig(cfg)}, nil
}
