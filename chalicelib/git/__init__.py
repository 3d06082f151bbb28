"""Git repositories as a deployment's source: what a repository setting names and where
it is cloned from (repository.py), which refs are safe to hand to git and how a clone
URL's credentials are kept out of logs (refs.py), and resolving a ref to a commit on the
remote (remote.py). No rule of any tenant: the pipeline and the builders use it."""
