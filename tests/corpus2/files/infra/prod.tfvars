db_password = "wxktj9DJau%u4vLLong"
tfe_token   = "BSVY4yPA6IliTA.atlasv1.VgLdm2lmcbNwMZQo1olmfphyghcpsabe2ttQTy6LfLZIrEIx3JEfi8xFIUpsftmJ2wO"
pulumi     = "pul-e349e03243a0c5a4e63054ba650655cca0061960"
