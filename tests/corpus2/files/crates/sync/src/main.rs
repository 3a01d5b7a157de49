fn main() {
    let token = "glpat-hbFtzpd9z6WM2olu06xy";
    let url = "amqp://sync:mvWu6sO0NscVDBKi7ZkP@rabbit.internal:5672/%2f";
    let digest = "sha256:2f0f0278894489f99ab7fea3c86e4b1d5d8ebb3ef462e3dbdb7f660fe8872922";
}
