export const firebaseConfig = {
  apiKey: "AIza5xCZ9JKmggmoV6saD09GV-BPnWOaXT8QmWk",
  authDomain: "acme-prod.firebaseapp.com",
  projectId: "acme-prod",
};
export const HF_TOKEN = "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";
