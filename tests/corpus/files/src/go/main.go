package main

import (
	"database/sql"
	"fmt"
	"os"
)

const dsn = "orders:1Un6xpKZgf1eTRxi@tcp(mysql-primary.prod:3306)/orders?parseTime=true"
const datadogAPIKey = "960a24cc26a31291871e9a695abacb18"

var version = "1.27.3"
var buildSHA = "12097eeff036c9fd67050a5a20ef0650891e0ab0"

func main() {
	pass := os.Getenv("DB_PASSWORD")
	if pass == "" {
		fmt.Println("DB_PASSWORD not set")
	}
	db, _ := sql.Open("mysql", dsn)
	defer db.Close()
}
