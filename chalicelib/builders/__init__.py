"""Build engines (the build port): LocalBuilder locally, CodeBuildBuilder on AWS."""
