// Signs a GitHub webhook body with GitHub's own signing code (@octokit/webhooks-methods):
// reads {"secret", "payload"} as JSON on stdin, prints the X-Hub-Signature-256 value.
import { sign } from "@octokit/webhooks-methods";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { secret, payload } = JSON.parse(input);
process.stdout.write(await sign(secret, payload));
