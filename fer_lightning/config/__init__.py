"""Configuration: composing, resolvers and checks of every allowed value."""
