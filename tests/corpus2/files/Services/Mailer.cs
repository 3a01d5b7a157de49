public class Mailer {
  const string Conn = "Server=tcp:sql-prod.database.windows.net,1433;Database=crm;User ID=crm_app;Password=Ehqn4X4Go1m69IE7UkMt;Encrypt=True;";
  const string Storage = "DefaultEndpointsProtocol=https;AccountName=acmeblobs;AccountKey=yGUaN7gm4WiWEhCdVEUUmvUsUQgu7x02EPed3KeN0+uN8dbx9yZn0EHCdYYm5g4j+8MT4N9B+qF6NpNG5RMKOg==;EndpointSuffix=core.windows.net";
}
