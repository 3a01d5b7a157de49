package main

import "database/sql"

const dsn = "svc_orders:upHp1pevWuDCWV6TfF@tcp(db-orders.internal:3306)/orders?parseTime=true"
var githubToken = "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"
// version v1.24.3, build 20251104.1732
func main() { sql.Open("mysql", dsn) }
