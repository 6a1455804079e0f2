"""`leadctl replay`: the command (`cli`), the pure plan (`plan`), the cluster (`kafka`), the
`replay_runs` rows (`runs`), the rewind and follow (`execute`) and what it did (`summary`)."""
