db_password        = "FTeqsUACX!x5HoRPz1Inl-6Z"
datadog_api_key    = "30c2b458fe499491d2050d9660ad8c9f"
cloudflare_api_token = "OxZbdJ9uYRiLMw24Yv0fXDL3GaqBEc4LVrzsQE_x"
tfc_token          = "uM16StaeAyOSTj.atlasv1.P9BwLxiNUwNiMvz6fnXz2H0qXwk0h5VCck4wW2wOxeJTVrsAxuceUJFdyNAPGF9QFC5"
environment        = "prod"
instance_count     = 4
