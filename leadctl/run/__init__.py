"""`leadctl run`: the command (`cli`), what it starts (`demo`) and how (`supervisor`)."""
