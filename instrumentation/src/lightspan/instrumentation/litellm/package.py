_instruments = ("litellm >= 1.40.0",)
