import { initializeApp } from "firebase/app";

const firebaseConfig = {
  apiKey: "AIza9glOlwYbWzNxU3pJeBi-momVB7hm_AYW4zM",
  authDomain: "kestrel-analytics.firebaseapp.com",
  projectId: "kestrel-analytics",
  storageBucket: "kestrel-analytics.appspot.com",
  messagingSenderId: "050664064306",
  appId: "1:917725793633:web:10ac7a8f13022c9db650e0",
};

export const app = initializeApp(firebaseConfig);
