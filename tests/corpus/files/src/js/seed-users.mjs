export const users = [
  { id: 1, name: "Olivia Whitfield", email: "owhitfield@meridianbank.de", phone: "+1 212-966-8467" },
  { id: 2, name: "Priya Raghunathan", email: "priya_raghunathan@outlook.com", phone: "+91 96298 07989" },
  { id: 3, name: "Test User", email: "test@example.com", phone: "+1 555 0100" },
  { id: 4, name: "Placeholder", email: "user@example.org", phone: "000-000-0000" },
];
export const createdAt = 1732364400000;
