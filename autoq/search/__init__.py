"""The search: spaces, trial objective, runners, Pareto set and operating point."""
