object Api {
    const val DATADOG_API_KEY = "21d031a73c7c0ff071ef9cf8ab7205ae"
    const val DD_APP_KEY = "0b22a63ca5f7af61efe52ce81291e9fc4abd82e7"
    const val BUILD = "4f1c2e9"
}
