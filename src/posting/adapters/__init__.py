"""The only modules that talk to AWS. Each owns one boto3 client and speaks domain types."""
